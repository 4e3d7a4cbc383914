"""Member and hub I/O: one client per cluster (`clusters`), the fleet's live views of the members
(`fleet`), the hub's own objects (`hub`) and what the operator tells Prometheus (`metrics`).

It imports the core and nothing of the handlers or commands.
"""
