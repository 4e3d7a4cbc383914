"""Reading objects from a member (or Secrets from the hub): get one, or list many with a resourceVersion.

Lists are read in pages so one reply stays small even in a big cluster; all pages share the
resourceVersion of the first, which is where a watch continues from (see `watching`). A page that is
not shaped as the API shapes lists (no resourceVersion, items that are not objects with a name and a
uid) is `MemberMalformed`: callers key their views by those fields and must never see it half-read.

A member also decides how many pages there are. So that it cannot grow a view without bound by
answering `continue` forever, a page may hold no more items than were asked for, and a listing no more
than MAX_LISTING_BYTES over all its pages; past either it is `MemberMalformed`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from samizdat.remote.clusters import errors, resources
from samizdat.remote.clusters.client import ClusterClient

PAGE_SIZE = 500
# 500-object pages of ordinary objects are well under 1 MiB each; this is room for a very large member
# (a million pods) and a stop for one that pages forever.
MAX_LISTING_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Listing:
    """A consistent list of objects as of `resource_version`."""

    items: tuple[dict[str, Any], ...]
    resource_version: str


async def get(
    client: ClusterClient, resource: resources.Resource, name: str, *, namespace: str | None = None
) -> dict[str, Any]:
    """One object; raises `NotFound` when it does not exist."""
    reply = await client.request("GET", resource.path(namespace=namespace, name=name))
    return reply.json()


async def list_objects(
    client: ClusterClient,
    resource: resources.Resource,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    page_size: int = PAGE_SIZE,
) -> Listing:
    """All objects of `resource` (in `namespace`, or everywhere), matching the selectors if given.

    Raises `Gone` if the list changed so much between pages that the server dropped its snapshot; list
    again then.
    """
    params: dict[str, str] = {"limit": str(page_size)}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    items: list[dict[str, Any]] = []
    resource_version: str | None = None
    listed_bytes = 0
    while True:
        reply = await client.request("GET", resource.path(namespace=namespace), params=params)
        listed_bytes += len(reply.body)
        if listed_bytes > MAX_LISTING_BYTES:
            raise errors.MemberMalformed(client.member, f"list of {resource.plural} exceeds {MAX_LISTING_BYTES} bytes")
        page = reply.json()
        metadata = _mapping(page.get("metadata"))
        # Only the first page's version counts: later pages are served from that same snapshot.
        resource_version = resource_version or str(metadata.get("resourceVersion") or "")
        page_items = list(_with_kind(client.member, page.get("items"), resource))
        if len(page_items) > page_size:
            raise errors.MemberMalformed(
                client.member, f"a page of {resource.plural} holds {len(page_items)} items, {page_size} were asked for"
            )
        items.extend(page_items)
        token = metadata.get("continue")
        if not token:
            break
        params["continue"] = str(token)
    if not resource_version:
        raise errors.MemberMalformed(client.member, f"list of {resource.plural} carries no resourceVersion")
    return Listing(tuple(items), resource_version)


async def read_secret(client: ClusterClient, *, namespace: str, name: str, key: str) -> str:
    """One value of a Secret, decoded (e.g. a member's kubeconfig kept in the hub)."""
    return secret_value(client, await get(client, resources.SECRETS, name, namespace=namespace), key)


def secret_value(client: ClusterClient, secret: Mapping[str, Any], key: str) -> str:
    """One value of a Secret already read, decoded."""
    metadata = _mapping(secret.get("metadata"))
    where = f"Secret {metadata.get('namespace')}/{metadata.get('name')}"
    encoded = _mapping(secret.get("data")).get(key)
    if not isinstance(encoded, str):
        raise errors.NotFound(client.member, f"{where} has no key {key!r}")
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise errors.MemberAPIError(client.member, f"{where} key {key!r} is not text") from None


def _with_kind(member: str, raw_items: Any, resource: resources.Resource) -> Iterable[dict[str, Any]]:
    # Items of a list carry no apiVersion/kind of their own; give them back what a GET would show.
    if raw_items is None:
        return  # Go writes an empty list as null
    if not isinstance(raw_items, list):
        raise errors.MemberMalformed(member, f"list of {resource.plural} carries items that are not a list")
    for item in raw_items:
        check_object(member, item, resource)
        item.setdefault("apiVersion", resource.api_version)
        item.setdefault("kind", resource.kind)
        yield item


def check_object(member: str, item: Any, resource: resources.Resource) -> None:
    """Raise `MemberMalformed` unless `item` is an object with the metadata every API object has."""
    metadata = item.get("metadata") if isinstance(item, dict) else None
    if not isinstance(metadata, dict) or not all(
        isinstance(metadata.get(key), str) and metadata[key] for key in ("name", "uid")
    ):
        raise errors.MemberMalformed(member, f"{resource.plural}: an item without metadata.name and metadata.uid")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
