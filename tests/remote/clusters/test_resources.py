"""Resource URLs and watch-event parsing: the pure parts of talking to a member."""

from __future__ import annotations

from typing import Any

import pytest

from samizdat.remote.clusters import errors, resources, watching

PATHS: list[Any] = [
    pytest.param(resources.NODES, {}, "/api/v1/nodes", id="core-cluster-scoped-collection"),
    pytest.param(resources.NODES, {"name": "gpu-0"}, "/api/v1/nodes/gpu-0", id="core-cluster-scoped-object"),
    pytest.param(resources.PODS, {}, "/api/v1/pods", id="namespaced-across-all-namespaces"),
    pytest.param(resources.SECRETS, {"namespace": "samizdat-system", "name": "member-a"},
                 "/api/v1/namespaces/samizdat-system/secrets/member-a", id="core-namespaced-object"),
    pytest.param(resources.DEPLOYMENTS, {"namespace": "w"}, "/apis/apps/v1/namespaces/w/deployments",
                 id="group-namespaced-collection"),
    pytest.param(resources.DEPLOYMENTS, {"namespace": "w", "name": "d", "subresource": "scale"},
                 "/apis/apps/v1/namespaces/w/deployments/d/scale", id="subresource"),
    pytest.param(resources.JOBS, {"namespace": "w", "name": "../../../api/v1/secrets"},
                 "/apis/batch/v1/namespaces/w/jobs/..%2F..%2F..%2Fapi%2Fv1%2Fsecrets", id="names-cannot-escape"),
]


@pytest.mark.parametrize(("resource", "where", "path"), PATHS)
def test_paths(resource: resources.Resource, where: dict[str, str], path: str) -> None:
    assert resource.path(**where) == path


SCOPE_ERRORS: list[Any] = [
    pytest.param(resources.NODES, {"namespace": "n", "name": "x"}, "cluster-scoped", id="namespace-on-cluster-scoped"),
    pytest.param(resources.DEPLOYMENTS, {"name": "x"}, "needs a namespace", id="namespaced-object-without-namespace"),
    pytest.param(resources.DEPLOYMENTS, {"namespace": "n", "subresource": "scale"}, "needs an object name",
                 id="subresource-without-name"),
]


@pytest.mark.parametrize(("resource", "where", "complaint"), SCOPE_ERRORS)
def test_scope_mistakes(resource: resources.Resource, where: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        resource.path(**where)


def test_resources_of_manifests() -> None:
    assert resources.of({"apiVersion": "apps/v1", "kind": "Deployment"}) is resources.DEPLOYMENTS
    assert resources.of({"apiVersion": "batch/v1", "kind": "Job"}) is resources.JOBS
    assert resources.of({"apiVersion": "v1", "kind": "Namespace"}) is resources.NAMESPACES
    with pytest.raises(ValueError, match="no known resource"):
        resources.of({"apiVersion": "apps/v1beta1", "kind": "Deployment"})


EVENTS: list[Any] = [
    pytest.param(b'{"type":"ADDED","object":{"kind":"Node","metadata":{"name":"n","uid":"u","resourceVersion":"5"}}}',
                 "ADDED", "5", id="added"),
    pytest.param(b'{"type":"DELETED","object":{"metadata":{"name":"n","uid":"u","resourceVersion":"9"}}}', "DELETED",
                 "9", id="deleted"),
    pytest.param(b'{"type":"BOOKMARK","object":{"kind":"Node","metadata":{"resourceVersion":"12"}}}', "BOOKMARK", "12",
                 id="bookmark"),
    pytest.param(b'{"type":"MODIFIED","object":{"metadata":{"name":"n","uid":"u"}}}', "MODIFIED", None,
                 id="no-version"),
]


@pytest.mark.parametrize(("line", "kind", "version"), EVENTS)
def test_watch_events(line: bytes, kind: str, version: str | None) -> None:
    event = watching._parse("m", line, resources.NODES)
    assert event is not None and (event.type, event.resource_version) == (kind, version)


WATCH_ERRORS: list[Any] = [
    pytest.param(b'{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired",'
                 b'"message":"too old resource version: 1 (737)"}}', errors.Gone, id="expired-version"),
    pytest.param(b'{"type":"ERROR","object":{"kind":"Status","code":500,"message":"internal"}}',
                 errors.MemberAPIError, id="server-error"),
    pytest.param(b'{"type":"ERROR","object":{"kind":"Status"}}', errors.MemberAPIError, id="error-without-code"),
    pytest.param(b"{not json", errors.MemberMalformed, id="not-json"),
    pytest.param(b'{"type":"ADDED","object":null}', errors.MemberMalformed, id="no-object"),
    pytest.param(b'{"type":"ADDED","object":{"kind":"Node"}}', errors.MemberMalformed, id="no-metadata"),
    pytest.param(b'{"type":"MODIFIED","object":{"metadata":{"name":"n"}}}', errors.MemberMalformed, id="no-uid"),
    pytest.param(b'{"type":"DELETED","object":{"metadata":{"name":7,"uid":"u"}}}', errors.MemberMalformed,
                 id="name-not-a-string"),
]


@pytest.mark.parametrize(("line", "expected"), WATCH_ERRORS)
def test_watch_errors(line: bytes, expected: type[errors.MemberError]) -> None:
    with pytest.raises(expected):
        watching._parse("m", line, resources.NODES)


def test_unknown_watch_events_are_skipped() -> None:
    assert watching._parse("m", b'{"type":"SOMETHING-NEW","object":{}}', resources.NODES) is None
