"""`samizdat run`'s leader-election flags: defaults, where the Lease lives, and unsafe timings refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from samizdat import cli
from samizdat.commands import run
from samizdat.leadership import Election, Timing


def parse(*argv: str, service_account: Path = Path("/nonexistent")) -> Election:
    chosen = run.election(cli.build_parser().parse_args(["run", "--lease-name", "samizdat-leader", *argv]),
                          service_account=service_account)
    assert chosen is not None
    return chosen


def test_without_a_lease_name_there_is_no_election() -> None:
    assert run.election(cli.build_parser().parse_args(["run"])) is None


def test_defaults_take_over_in_about_ten_seconds() -> None:
    chosen = parse()
    assert chosen.timing == Timing(8, 5.0, 1.0)
    assert (chosen.namespace, chosen.name) == ("samizdat-system", "samizdat-leader")


def test_identities_are_unique_per_process() -> None:
    assert parse().identity != parse().identity
    assert parse("--identity", "site-a").identity == "site-a"


def test_the_lease_lives_in_the_pods_namespace(tmp_path: Path) -> None:
    (tmp_path / "namespace").write_text("ops\n")
    assert parse(service_account=tmp_path).namespace == "ops"
    assert parse("--lease-namespace", "elsewhere", service_account=tmp_path).namespace == "elsewhere"


def test_unsafe_timings_stop_the_operator_before_it_starts(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--lease-duration", "5", "--renew-deadline", "5"]) == 2
    assert "must exceed the renew deadline" in capsys.readouterr().err
