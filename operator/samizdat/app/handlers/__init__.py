"""kopf handlers: thin glue between the hub's custom resources, the fleet and the placement core.

Importing this package registers every handler with kopf's default registry.
"""

from samizdat.app.handlers import aiworkloads, credentials, memberclusters, startup, traffic

__all__ = ["aiworkloads", "credentials", "memberclusters", "startup", "traffic"]
