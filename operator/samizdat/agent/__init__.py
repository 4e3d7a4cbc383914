"""`samizdat agent`: the GPU node's own reporter, reading NVML and publishing on its Node.

`nvml` is the only door to the driver (and the only importer of pynvml), `reading` turns its answers
into an `observation`, which is pure and says what to publish; `publishing` writes it on the Node and
`daemon` loops. The inventory (`samizdat.core.inventory`) owns the names written and reads them back.
"""

from samizdat.agent import daemon, nvml, observation, publishing, reading

__all__ = ["daemon", "nvml", "observation", "publishing", "reading"]
