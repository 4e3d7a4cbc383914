"""The member's fence: admission rules in a member's own API server that refuse a stale leader's writes.

The warrant (see `elector`) stops a leader that knows it lost; the fence stops one that does not — a
process paused between checking its warrant and sending, or a write still in flight. Three objects,
built here as plain manifests for whoever installs them in a member (`samizdat join`, or an admin):

- the **fence epoch**: a ConfigMap whose `data.epoch` is the highest leader epoch the member has been
  told of; a new leader raises it before its first write there. It lives in samizdat's identity
  namespace, not in the workload namespace it guards: the binding refuses everyone's writes while its
  params are missing (the API server looks them up before it reads the match conditions), so a fence
  epoch inside the guarded namespace, deleted first when that namespace is deleted, would leave the
  namespace controller unable to delete the Deployments and the namespace Terminating for ever;
- a ValidatingAdmissionPolicy and its binding that refuse every create, update or delete of samizdat's
  Deployments and Jobs by samizdat's identity unless the object carries an epoch at least the fence's.
  An object without an epoch counts as epoch 0: an operator that stands for no election writes none, and
  works unchanged behind a fence `join` installed at 0, until an elected leader raises it.
  A delete carries no object, so it is judged by the object as it stands: it must have been marked for
  retirement (`samizdat.io/retire`) by a write of at least the fence epoch, which `clusters.deleting`
  makes just before each delete and which an older leader cannot make, its write being refused. (An
  older leader may still delete what a current one marked and was about to delete anyway.) Requests by
  anyone else (the member's controllers, its admins) are not this fence's business;
- a second policy that lets the fence epoch only grow (`CEL: new >= old`) and never be deleted by
  samizdat's identity, so a stale leader cannot lower it first.

The scale subresource is refused to samizdat's identity outright: a Scale object carries no annotations,
so an epoch cannot ride on it; replicas change through the Deployment itself.
"""

from __future__ import annotations

from typing import Any

from samizdat.core.leadership.lease import EPOCH_ANNOTATION, RETIRE_ANNOTATION

FENCE_NAME = "samizdat-fence"
POLICY_NAME = "samizdat-epoch-fence"
GUARD_NAME = "samizdat-fence-only-grows"
ADMISSION = "admissionregistration.k8s.io/v1"

# What the fence judges: samizdat's copies (see `manifests.COPY_KINDS`), as (API group, plural).
FENCED = (("apps", "deployments"), ("batch", "jobs"))

_HAS = "has({0}.metadata.annotations) && '{1}' in {0}.metadata.annotations"
_NOT_SCALE = "!has(request.subResource) || request.subResource != 'scale'"


def _epoch_of(obj: str) -> str:
    """The object's epoch in CEL; 0 when it carries none (an operator that stands for no election)."""
    return f"({_HAS.format(obj, EPOCH_ANNOTATION)} ? int({obj}.metadata.annotations['{EPOCH_ANNOTATION}']) : 0)"


def _stamped_at_least_fence(obj: str) -> str:
    return f"{_epoch_of(obj)} >= int(params.data.epoch)"


def _retired_at_least_fence(obj: str) -> str:
    marked = f"{_HAS.format(obj, RETIRE_ANNOTATION)} && {obj}.metadata.annotations['{RETIRE_ANNOTATION}'] == 'true'"
    return f"{_stamped_at_least_fence(obj)} && {marked}"


def build_fence_epoch(namespace: str, epoch: int) -> dict[str, Any]:
    """The ConfigMap holding the member's fence epoch (apply it to raise the epoch)."""
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": FENCE_NAME, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "samizdat"}},
        "data": {"epoch": str(epoch)},
    }


def build_fence_policy(username: str) -> dict[str, Any]:
    """The policy refusing samizdat's writes to its Deployments and Jobs below the fence epoch."""
    return {
        "apiVersion": ADMISSION, "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {"resourceRules": [
                {"apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE", "DELETE"],
                 "resources": [plural, f"{plural}/scale"] if plural == "deployments" else [plural]}
                for group, plural in FENCED
            ]},
            "matchConditions": [{"name": "samizdat-identity", "expression": f"request.userInfo.username == '{username}'"}],
            # `subResource` is absent from requests for the object itself: test for it before reading it.
            "validations": [
                {"expression": _NOT_SCALE,
                 "message": "samizdat changes replicas through the Deployment, where its epoch can be checked",
                 "reason": "Forbidden"},
                {"expression": f"!({_NOT_SCALE}) || (request.operation == 'DELETE' ? "
                               f"{_retired_at_least_fence('oldObject')} : {_stamped_at_least_fence('object')})",
                 "messageExpression": "'write from a leader epoch older than the fence epoch ' + params.data.epoch",
                 "reason": "Forbidden"},
            ],
        },
    }


def build_fence_binding(guarded: str, epoch_namespace: str) -> dict[str, Any]:
    """The binding of the fence policy to the `guarded` namespace, with the fence epoch (kept in
    `epoch_namespace`) as params.

    Without the fence epoch object every write by samizdat is refused (`parameterNotFoundAction: Deny`):
    a fence that has lost its epoch must not wave everything through.
    """
    return {
        "apiVersion": ADMISSION, "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME},
        "spec": {
            "policyName": POLICY_NAME,
            "validationActions": ["Deny"],
            "paramRef": {"name": FENCE_NAME, "namespace": epoch_namespace, "parameterNotFoundAction": "Deny"},
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": guarded}}},
        },
    }


def build_guard_policy(username: str) -> dict[str, Any]:
    """The policy that lets samizdat's identity only raise the fence epoch, never lower or delete it."""
    return {
        "apiVersion": ADMISSION, "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": GUARD_NAME},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [
                {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"],
                 "operations": ["CREATE", "UPDATE", "DELETE"]},
            ]},
            "matchConditions": [
                {"name": "samizdat-identity", "expression": f"request.userInfo.username == '{username}'"},
                {"name": "the-fence-epoch", "expression": f"request.name == '{FENCE_NAME}'"},
            ],
            "validations": [
                {"expression": "request.operation != 'DELETE'", "message": "the fence epoch is never deleted",
                 "reason": "Forbidden"},
                {"expression": "request.operation != 'UPDATE' || "
                               "int(object.data.epoch) >= int(oldObject.data.epoch)",
                 "messageExpression": "'the fence epoch only grows: ' + oldObject.data.epoch + ' to ' + "
                                      "object.data.epoch + ' refused'",
                 "reason": "Forbidden"},
            ],
        },
    }


def build_guard_binding(epoch_namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": ADMISSION, "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": GUARD_NAME},
        "spec": {
            "policyName": GUARD_NAME, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": epoch_namespace}}},
        },
    }


def build_checks(guarded: str, epoch_namespace: str, username: str) -> list[dict[str, Any]]:
    """The policies and their bindings, in order: the guard of the fence epoch before the fence itself."""
    return [
        build_guard_policy(username), build_guard_binding(epoch_namespace),
        build_fence_policy(username), build_fence_binding(guarded, epoch_namespace),
    ]


def build_fence(guarded: str, epoch_namespace: str, username: str, epoch: int = 0) -> list[dict[str, Any]]:
    """Everything a member admin installs, in order: the epoch object first, then what checks against it."""
    return [build_fence_epoch(epoch_namespace, epoch), *build_checks(guarded, epoch_namespace, username)]
