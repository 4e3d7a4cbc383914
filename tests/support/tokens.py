"""ServiceAccount tokens as the API server shapes them, for tests of code that reads their claims."""

from __future__ import annotations

import base64
import json
from typing import Any


def jwt(claims: dict[str, Any]) -> str:
    """A token shaped like the API server's (the signature is never read by samizdat)."""
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def bound_claims(issued: int = 1_000, expires: int = 1_600, secret: dict[str, str] | None = None) -> dict[str, Any]:
    kubernetes: dict[str, Any] = {"namespace": "samizdat-system", "serviceaccount": {"name": "samizdat", "uid": "u1"}}
    if secret is not None:
        kubernetes["secret"] = secret
    return {"iat": issued, "exp": expires, "nbf": issued, "kubernetes.io": kubernetes}
