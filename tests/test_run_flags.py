"""`samizdat run`'s leader-election flags: defaults, where the Lease lives, and unsafe timings refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from samizdat import cli
from samizdat.commands import run
from samizdat.leadership import Timing


def parse(*argv: str) -> run.Election:
    return run.election(cli.build_parser().parse_args(["run", *argv]), service_account=Path("/nonexistent"))


def test_defaults_take_over_in_about_ten_seconds() -> None:
    chosen = parse()
    assert chosen.timing == Timing(8, 5.0, 1.0)
    assert (chosen.namespace, chosen.name) == ("samizdat-system", "samizdat-leader")


def test_identities_are_unique_per_process() -> None:
    assert parse().identity != parse().identity
    assert parse("--identity", "site-a").identity == "site-a"


def test_the_lease_lives_in_the_pods_namespace(tmp_path: Path) -> None:
    (tmp_path / "namespace").write_text("ops\n")
    args = cli.build_parser().parse_args(["run"])
    assert run.election(args, service_account=tmp_path).namespace == "ops"
    args = cli.build_parser().parse_args(["run", "--lease-namespace", "elsewhere"])
    assert run.election(args, service_account=tmp_path).namespace == "elsewhere"


def test_unsafe_timings_stop_the_operator_before_it_starts(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--lease-duration", "5", "--renew-deadline", "5"]) == 2
    assert "must exceed the renew deadline" in capsys.readouterr().err
