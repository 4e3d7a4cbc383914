"""The ways in: kopf handlers that join the core to the members (`handlers`), and the `samizdat`
command line (`cli`, `commands`). It may import both other rooms; nothing imports it.
"""
