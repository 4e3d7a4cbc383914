"""The member's fence as samizdat builds it (its behaviour is checked in a real member API server:
e2e/test_fence.py)."""

from __future__ import annotations

from samizdat.core.leadership import fence


def test_the_fence_installs_its_epoch_before_what_checks_against_it() -> None:
    objects = fence.build_fence("samizdat-workloads", "samizdat-system", "system:serviceaccount:samizdat-system:samizdat",
                                epoch=3)
    assert [o["kind"] for o in objects] == ["ConfigMap", *["ValidatingAdmissionPolicy",
                                                           "ValidatingAdmissionPolicyBinding"] * 2]
    assert objects[0]["data"] == {"epoch": "3"}
    binding = objects[-1]["spec"]
    # A fence without its epoch object refuses everything rather than letting everything through.
    assert binding["paramRef"] == {"name": fence.FENCE_NAME, "namespace": "samizdat-system",
                                   "parameterNotFoundAction": "Deny"}
    assert objects[0]["metadata"]["namespace"] == "samizdat-system"
    for policy in (objects[1], objects[3]):
        assert policy["spec"]["failurePolicy"] == "Fail"
        assert "system:serviceaccount:samizdat-system:samizdat" in policy["spec"]["matchConditions"][0]["expression"]
