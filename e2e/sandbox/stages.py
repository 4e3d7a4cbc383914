"""What a member's fake kubelets (kwok) do with the pods scheduled onto them: kwok's pod stages, per member.

kwok plays a pod's lifecycle as a list of Stages, each a selector on the pod plus the status it moves to.
The sandbox runs kwok's stock `fast` stages (`pod-ready`: Running and Ready at once; `pod-delete`), minus
`pod-complete`, so a training Job's pods keep running until deleted, and adds two behaviours of real GPU
nodes:

- **Weights loading**: a pod annotated `sandbox.samizdat.io/ready-after: <duration>` (e.g. `20s`, Go
  duration syntax) is Running at once but becomes Ready only that long after, as a model server is
  Running while it loads its weights. Pods without the annotation are Ready at once, as before.
- **A blocked image**: the member's kubelets cannot pull the images on its blocklist (a national firewall
  in front of the registry), so a pod using one stays Pending in `ImagePullBackOff`, with a Warning Event.
  Pods already running keep running, as they would: their image is already on the node. Once the block is
  lifted (`heal`), the held pods start, as a kubelet's next pull retry would.

The blocklist is part of the member's kwok configuration, so changing it restarts that member's kwok.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

READY_AFTER_ANNOTATION = "sandbox.samizdat.io/ready-after"
IMAGE_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")

_READY_AFTER = f'.metadata.annotations["{READY_AFTER_ANNOTATION}"]'
_IMAGES = ".spec.containers.[].image"
_READY = '.status.conditions.[] | select( .type == "Ready" ) | .status'


def _expression(key: str, operator: str, values: Sequence[str] = ()) -> dict[str, Any]:
    expression: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        expression["values"] = list(values)
    return expression


def _pod_stage(name: str, expressions: list[dict[str, Any]], status_template: str,
               delay: dict[str, Any] | None = None, event: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
        "selector": {"matchExpressions": expressions},
        "next": {"statusTemplate": status_template},
    }
    if delay:
        spec["delay"] = delay
    if event:
        spec["next"]["event"] = event
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name}, "spec": spec}


def _pullable(blocked: Sequence[str]) -> list[dict[str, Any]]:
    """A pod whose images this member can pull."""
    return [_expression(_IMAGES, "NotIn", blocked)] if blocked else []


def _not_started(blocked: Sequence[str]) -> list[dict[str, Any]]:
    """A pod kwok has not started yet (no IP) and whose images this member can pull."""
    return [_expression(".metadata.deletionTimestamp", "DoesNotExist"),
            _expression(".status.podIP", "DoesNotExist"), *_pullable(blocked)]


def _conditions(ready: bool) -> str:
    status = '"True"' if ready else '"False"'
    waiting = "" if ready else "\n  reason: ContainersNotReady"
    return f"""conditions:
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: "True"
  type: Initialized
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: {status}
  type: Ready{waiting}
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: {status}
  type: ContainersReady{waiting}
"""


def _running(ready: bool, started_at: str) -> str:
    """Status of a started pod whose containers are (or are not yet) ready; the pod keeps the IP and
    start time of its first start."""
    return f"""{{{{ $now := Now }}}}
{_conditions(ready)}
containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: {str(ready).lower()}
  restartCount: 0
  started: true
  state:
    running:
      startedAt: {started_at}
{{{{ end }}}}
hostIP: {{{{ NodeIPWith .spec.nodeName | Quote }}}}
podIP: {{{{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}}}
phase: Running
startTime: {started_at}
"""


def _loading_stages(blocked: Sequence[str]) -> list[dict[str, Any]]:
    annotated = _expression(_READY_AFTER, "Exists")
    loading = _pod_stage("pod-loading-weights", [*_not_started(blocked), annotated],
                         _running(False, "{{ $now | Quote }}"))
    loaded = _pod_stage(
        "pod-weights-loaded",
        [_expression(".metadata.deletionTimestamp", "DoesNotExist"), _expression(".status.podIP", "Exists"),
         annotated, _expression(_READY, "In", ["False"])],
        _running(True, "{{ $.status.startTime | Quote }}"),
        # counted from when kwok sees the pod Running; an unparsable value means no delay
        delay={"durationMilliseconds": 0, "durationFrom": {"jq": {"expression": _READY_AFTER}}},
    )
    return [loading, loaded]


def _image_blocked_stage(blocked: Sequence[str]) -> dict[str, Any]:
    # a Go template string literal: every reference passed `IMAGE_REFERENCE`, so JSON quoting is exact
    listed = " ".join(json.dumps(image) for image in blocked)
    template = f"""{{{{ $now := Now }}}}
{_conditions(False)}
containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: false
  restartCount: 0
  started: false
  state:
    waiting:
{{{{ if eq .image {listed} }}}}
      reason: ImagePullBackOff
      message: {{{{ printf "Back-off pulling image %q" .image | Quote }}}}
{{{{ else }}}}
      reason: ContainerCreating
{{{{ end }}}}
{{{{ end }}}}
hostIP: {{{{ NodeIPWith .spec.nodeName | Quote }}}}
phase: Pending
startTime: {{{{ $now | Quote }}}}
"""
    expressions = [_expression(".metadata.deletionTimestamp", "DoesNotExist"),
                   _expression(".status.podIP", "DoesNotExist"),
                   _expression(_IMAGES, "In", blocked),
                   # played once: the held pod keeps its status until the block is lifted
                   _expression(".status.containerStatuses.[].state.waiting.reason", "NotIn", ["ImagePullBackOff"])]
    return _pod_stage("pod-image-blocked", expressions, template, event={
        "type": "Warning", "reason": "Failed",
        "message": "Failed to pull image: the registry cannot be reached from this node",
    })


def check_image(image: str) -> str:
    if not IMAGE_REFERENCE.fullmatch(image):
        raise ValueError(f"not an image reference: {image!r}")
    return image


def member_stages(stock: Path, blocked_images: Sequence[str] = ()) -> str:
    """kwok's `--config` for one member: the stock pod stages in `stock`, taught to leave loading and
    blocked pods to the stages added here."""
    blocked = [check_image(image) for image in blocked_images]
    stages: list[dict[str, Any]] = list(yaml.safe_load_all(stock.read_text()))
    for stage in stages:
        if stage["metadata"]["name"] == "pod-ready":
            stage["spec"]["selector"]["matchExpressions"] += [
                *_pullable(blocked), _expression(_READY_AFTER, "DoesNotExist"),
            ]
    stages += _loading_stages(blocked)
    if blocked:
        stages.append(_image_blocked_stage(blocked))
    return yaml.safe_dump_all(stages, sort_keys=False)
