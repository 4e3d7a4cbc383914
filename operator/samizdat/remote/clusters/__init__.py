"""Member-cluster I/O: every call to a member's API (and the hub's Secrets) goes through this package.

One `ClusterClient` per member (`client`), every request under a deadline, every failure one of our own
`MemberError`s (`errors`), one verb per module (`applying`, `creating`, `deleting`, `fetching`, `minting`,
`probing`, `reviewing`, `scaling`, `watching`), and a single write path (`writing.write`), which only the
elected leader gets through (`electing` stands for leader through the hub's Lease, `leasing` reads and
writes it). Callers import the modules.
"""
