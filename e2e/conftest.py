"""pytest fixtures for the end-to-end suites: one real sandbox per test session.

Set SAMIZDAT_SANDBOX_REUSE=1 to run against a sandbox already started with `python -m e2e.sandbox up`
(it is then left running); otherwise the session starts its own in a temporary directory and stops it.
Either way samizdat's CRDs are installed and every member is registered with `samizdat join` before
the first test, so every e2e run exercises the join.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.helm import chart_operator_kubeconfig
from e2e.operator import OperatorProcess
from e2e.sandbox.world import Sandbox, free_port_base
from e2e.workloads import install_samizdat

MEMBERS = int(os.environ.get("SAMIZDAT_SANDBOX_MEMBERS", "6"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if os.environ.get("SAMIZDAT_SANDBOX_REUSE") == "1":
        world = Sandbox()
        if not world.running():
            world.up(MEMBERS)
        install_samizdat(world)
        yield world
        return
    port_base = os.environ.get("SAMIZDAT_E2E_PORT_BASE")
    world = Sandbox(tmp_path_factory.mktemp("sandbox"),
                    port_base=int(port_base) if port_base else free_port_base(MEMBERS))
    try:
        world.up(MEMBERS)
        install_samizdat(world)
        yield world
    finally:
        world.down()


@pytest.fixture(scope="session")
def hub(sandbox: Sandbox) -> Sandbox:
    """The sandbox with samizdat's CRDs installed and every member registered (as a user would)."""
    return sandbox


@pytest.fixture(scope="session")
def operator(hub: Sandbox) -> Iterator[OperatorProcess]:
    # The chart's own ServiceAccount, not an admin: every scenario proves the chart's RBAC suffices.
    # Tokens renewed at 5 % of their lifetime: e2e/test_join.py sees a 10-minute token renewed within a
    # minute; the day-long tokens of the other members are not renewed within a session.
    process = OperatorProcess(hub, kubeconfig=chart_operator_kubeconfig(hub), args=("--renew-credentials-at", "0.05"))
    process.start()
    time.sleep(3)
    if process.process is None or process.process.poll() is not None:
        pytest.fail(f"the operator exited at start:\n{process.tail()}")
    try:
        yield process
    finally:
        process.stop()
