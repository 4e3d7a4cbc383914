"""The pure core: the domain model, jurisdictions, placement, health and every rule that needs no I/O.

Nothing here imports kopf, kubernetes, httpx, prometheus_client or pynvml (an import-linter contract
holds it so): every function is a function of its arguments, tested without an API.
"""
