"""`samizdat plan`: files in, the solver asked the right question, a readable answer and exit status out.

Most tests replace `placement.solve` with a stub that records its question and returns a fixed answer,
so they test this command and not the solver. The tests at the end run the real solver on the shipped
examples, and are skipped until it exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from samizdat.app import cli
from samizdat.core import placement
from samizdat.core.placement import snapshot

Builder = Callable[..., dict[str, Any]]
EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
REAL_SOLVE = getattr(placement, "solve", None)


@dataclass(frozen=True)
class Decision:
    """The solver's answer, as its contract describes it."""

    assignments: Mapping[str, int]
    feasible: bool = True
    diagnosis: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    binding_rule: str | None = None
    explanation: str | None = None
    shortfalls: tuple[placement.Shortfall, ...] = ()


@dataclass
class StubSolver:
    decision: Decision = Decision(assignments={})
    questions: list[tuple[snapshot.Snapshot, snapshot.Request]] = field(default_factory=list)

    def __call__(self, world: snapshot.Snapshot, request: snapshot.Request) -> Decision:
        self.questions.append((world, request))
        return self.decision


@pytest.fixture
def solver(monkeypatch: pytest.MonkeyPatch) -> StubSolver:
    stub = StubSolver()
    monkeypatch.setattr(placement, "solve", stub, raising=False)
    return stub


def plan(*argv: str) -> int:
    return cli.main(["plan", *argv])


def examples(*extra: str) -> tuple[str, ...]:
    return ("--clusters", str(EXAMPLES / "clusters.yaml"), "--workload", str(EXAMPLES / "workload.yaml"), *extra)


def write(directory: Path, name: str, *documents: Any) -> str:
    path = directory / name
    path.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    return str(path)


# --- the question asked --------------------------------------------------------------------------------


def test_solver_gets_every_member_and_the_workload_rules(solver: StubSolver) -> None:
    plan(*examples("--current", str(EXAMPLES / "current.json")))

    ((world, request),) = solver.questions
    members = {member.name: member for member in world.members}
    assert list(members) == [
        "us-east-h100", "us-west-a100", "gb-london-a100", "de-frankfurt-h100-cc", "is-keflavik-l40s",
        "ch-zurich-h100", "fr-paris-h100", "br-saopaulo-4090",
    ]
    assert members["us-west-a100"].unschedulable_reason == "down"
    assert members["fr-paris-h100"].unschedulable_reason == "quarantined until 2099-01-01T00:00:00Z"
    assert members["de-frankfurt-h100-cc"].tee is True
    assert members["is-keflavik-l40s"].shapes == (
        snapshot.NodeShape(product="NVIDIA-L40S", memory_mib=46068, tee=False, free_gpus=8, nodes=3),
    )
    assert world.alliances["five-eyes"] == frozenset({"AU", "CA", "GB", "NZ", "US"})
    assert request.replicas == 3
    assert request.gpu == snapshot.GPURequest(count=4, min_memory_mib=40960)
    assert (request.rules.min_jurisdictions, request.rules.max_per_jurisdiction) == (3, 1)
    assert request.rules.denied_alliances == frozenset({"five-eyes"})
    assert request.current == {"ch-zurich-h100": 1, "fr-paris-h100": 1}


def test_extra_alliances_reach_the_solver(solver: StubSolver) -> None:
    plan(*examples("--alliances", str(EXAMPLES / "alliances.yaml")))

    ((world, _),) = solver.questions
    assert world.alliances["nordic-council"] == frozenset({"DK", "FI", "IS", "NO", "SE"})
    assert "eu" in world.alliances


def test_a_list_of_clusters_is_read_like_separate_documents(
    solver: StubSolver, tmp_path: Path, member_cluster: Builder, ai_workload: Builder
) -> None:
    clusters = write(tmp_path, "clusters.yaml", {"apiVersion": "v1", "kind": "List",
                                                 "items": [member_cluster("a"), member_cluster("b", "FR")]})

    plan("--clusters", clusters, "--workload", write(tmp_path, "workload.yaml", ai_workload()))

    ((world, _),) = solver.questions
    assert [(member.name, member.country) for member in world.members] == [("a", "DE"), ("b", "FR")]


# --- the answer shown ----------------------------------------------------------------------------------

FEASIBLE = Decision(
    assignments={"de-frankfurt-h100-cc": 1, "is-keflavik-l40s": 1, "ch-zurich-h100": 1},
    diagnosis={"us-east-h100": ("denied: alliance five-eyes",), "br-saopaulo-4090": ("no node fits 4× GPU",)},
)
INFEASIBLE = Decision(
    assignments={},
    feasible=False,
    binding_rule="minJurisdictions",
    explanation="only 2 jurisdictions can take a replica; allow another country",
)


def test_table_has_a_row_per_member_and_a_summary(solver: StubSolver, capsys: pytest.CaptureFixture[str]) -> None:
    solver.decision = FEASIBLE

    status = plan(*examples())

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines[0].split() == ["CLUSTER", "COUNTRY", "PROVIDER", "REPLICAS", "WHY", "NOT", "/", "NOTES"]
    rows = {line.split()[0]: line for line in lines[1:9]}
    assert len(rows) == 8
    assert rows["ch-zurich-h100"].split()[1:5] == ["CH", "(Switzerland)", "infomaniak", "1"]
    assert rows["us-east-h100"].endswith("   denied: alliance five-eyes")
    assert rows["gb-london-a100"].split()[-2:] == ["0", "-"]
    assert lines[-1] == "feasible: 3 replicas on 3 members in 3 jurisdictions (CH, DE, IS) across 3 providers"


def test_table_columns_line_up(solver: StubSolver, capsys: pytest.CaptureFixture[str]) -> None:
    solver.decision = FEASIBLE

    plan(*examples())

    header, *rows = capsys.readouterr().out.splitlines()[:9]
    starts = [header.index(name) for name in ("COUNTRY", "PROVIDER", "REPLICAS", "WHY NOT / NOTES")]
    for row in rows:
        assert all(row[start - 1] == " " and row[start] != " " for start in starts), row


def test_table_notes_a_moved_replica(solver: StubSolver, capsys: pytest.CaptureFixture[str]) -> None:
    solver.decision = FEASIBLE

    plan(*examples("--current", str(EXAMPLES / "current.json")))

    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:9]}
    assert rows["fr-paris-h100"].endswith("   was 1")
    assert "was" not in rows["ch-zurich-h100"]


def test_infeasible_plan_exits_1_and_names_the_binding_rule(
    solver: StubSolver, capsys: pytest.CaptureFixture[str]
) -> None:
    solver.decision = INFEASIBLE

    status = plan(*examples())

    assert status == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        "infeasible, binding rule minJurisdictions: only 2 jurisdictions can take a replica; allow another country"
    )


def test_json_output(solver: StubSolver, capsys: pytest.CaptureFixture[str]) -> None:
    solver.decision = FEASIBLE

    status = plan(*examples("-o", "json"))

    result = json.loads(capsys.readouterr().out)
    members = {member["cluster"]: member for member in result["members"]}
    assert status == 0
    assert (result["feasible"], result["bindingRule"], result["explanation"]) == (True, None, None)
    assert result["assignments"] == dict(FEASIBLE.assignments)
    assert members["us-east-h100"] == {
        "cluster": "us-east-h100", "country": "US", "countryName": "United States", "provider": "aws",
        "alliances": ["five-eyes", "fourteen-eyes", "nine-eyes"], "replicas": 0, "currentReplicas": None,
        "reasons": ["denied: alliance five-eyes"],
    }
    assert result["summary"].startswith("feasible: 3 replicas")


def test_json_output_of_infeasible_plan(solver: StubSolver, capsys: pytest.CaptureFixture[str]) -> None:
    solver.decision = INFEASIBLE

    status = plan(*examples("-o", "json"))

    result = json.loads(capsys.readouterr().out)
    assert status == 1
    assert (result["feasible"], result["bindingRule"]) == (False, "minJurisdictions")
    assert result["explanation"] == INFEASIBLE.explanation
    assert result["assignments"] == {}


# --- bad input -----------------------------------------------------------------------------------------

WorkloadFiles = Callable[[Path, Builder, Builder, Builder], list[str]]


def _files(
    clusters: Any = None, workload: Any = None, alliances: Any = None, current: Any = None, raw: str | None = None
) -> WorkloadFiles:
    """Arguments for one bad-input case: each part a callable of the builders, or raw text for clusters."""

    def build(directory: Path, member: Builder, workload_builder: Builder, alliance: Builder) -> list[str]:
        if raw is not None:
            (directory / "clusters.yaml").write_text(raw, encoding="utf-8")
            argv = ["--clusters", str(directory / "clusters.yaml")]
        else:
            documents = clusters(member) if clusters else [member("a"), member("b", "FR")]
            argv = ["--clusters", write(directory, "clusters.yaml", *documents)]
        workloads = workload(workload_builder) if workload else [workload_builder()]
        argv += ["--workload", write(directory, "workload.yaml", *workloads)]
        if alliances:
            argv += ["--alliances", write(directory, "alliances.yaml", *alliances(alliance))]
        if current is not None:
            (directory / "current.json").write_text(current, encoding="utf-8")
            argv += ["--current", str(directory / "current.json")]
        return argv

    return build


BAD_INPUT = [
    pytest.param(_files(clusters=lambda m: []), "clusters.yaml: no MemberCluster found", id="no-clusters"),
    pytest.param(_files(raw="kind: [MemberCluster"), "clusters.yaml: not valid YAML", id="invalid-yaml"),
    pytest.param(_files(raw="- just\n- a list\n"), "expected MemberCluster objects, found 'list'", id="not-an-object"),
    pytest.param(_files(clusters=lambda m: [m("a"), {"kind": "Secret", "metadata": {"name": "kubeconfig"}}]),
                 "expected MemberCluster objects, found 'Secret'", id="wrong-kind"),
    pytest.param(_files(workload=lambda w: [w(name="x"), w(name="y")]),
                 "workload.yaml: expected exactly one AIWorkload, found 2", id="two-workloads"),
    pytest.param(_files(clusters=lambda m: [m("a", "gb")]),
                 "MemberCluster 'a': spec.jurisdiction.country: String should match pattern", id="lower-case-country"),
    pytest.param(_files(raw="kind: MemberCluster\nmetadata: {name: osl}\n"
                            "spec: {kubeconfigSecretRef: {name: k, namespace: n}, jurisdiction: {country: NO},"
                            " provider: p}\n"),
                 "quote the value", id="norway-read-as-false"),
    pytest.param(_files(workload=lambda w: [w({"replicas": 1, "placement": {"minJurisdictions": 2}})]),
                 "AIWorkload 'w1': spec: placement.minJurisdictions cannot exceed replicas", id="rule-broken"),
    pytest.param(_files(clusters=lambda m: [m("a", "UK")]),
                 "MemberCluster 'a': spec.jurisdiction.country: 'UK' is not an ISO 3166-1", id="unknown-country"),
    pytest.param(_files(workload=lambda w: [w({"placement": {"deniedAlliances": ["five-eye"]}})]),
                 "no alliance named 'five-eye'", id="unknown-alliance"),
    pytest.param(_files(alliances=lambda a: [a("pact", ["ZZ"])]),
                 "Alliance 'pact': spec.members: 'ZZ' is not", id="unknown-alliance-member"),
    pytest.param(_files(clusters=lambda m: [m("a"), m("a", "FR")]),
                 "MemberCluster 'a' is defined more than once", id="duplicate-cluster"),
    pytest.param(_files(current='{"gone": 1}'), "unknown MemberCluster 'gone'", id="current-unknown-cluster"),
    pytest.param(_files(current="{a: 1}"), "current.json: not valid JSON", id="current-not-json"),
    pytest.param(_files(current='{"a": -1}'), "cluster name -> replicas", id="current-negative"),
    pytest.param(_files(current='{"a": true}'), "cluster name -> replicas", id="current-boolean"),
    pytest.param(_files(current="[1]"), "cluster name -> replicas", id="current-not-an-object"),
]


@pytest.mark.parametrize(("files", "message"), BAD_INPUT)
def test_bad_input_exits_2_with_one_line(
    solver: StubSolver,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    member_cluster: Builder,
    ai_workload: Builder,
    alliance: Builder,
    files: WorkloadFiles,
    message: str,
) -> None:
    status = plan(*files(tmp_path, member_cluster, ai_workload, alliance))

    captured = capsys.readouterr()
    assert status == 2
    assert (captured.out, solver.questions) == ("", [])
    (line,) = captured.err.splitlines()
    assert line.startswith("samizdat plan: error: ")
    assert message in line


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda path: None, "No such file or directory", id="missing"),
        pytest.param(lambda path: path.mkdir(), "Is a directory", id="directory"),
        pytest.param(lambda path: path.write_bytes(b"kind: \xff\n"), "not UTF-8 text", id="not-utf-8"),
    ],
)
def test_unreadable_file_exits_2(
    solver: StubSolver,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    make: Callable[[Path], None],
    message: str,
) -> None:
    make(tmp_path / "clusters.yaml")

    status = plan("--clusters", str(tmp_path / "clusters.yaml"), "--workload", str(EXAMPLES / "workload.yaml"))

    assert status == 2
    assert capsys.readouterr().err == f"samizdat plan: error: {tmp_path / 'clusters.yaml'}: {message}\n"


def test_shipped_examples_are_good_input(solver: StubSolver, capsys: pytest.CaptureFixture[str]) -> None:
    plan(*examples("--alliances", str(EXAMPLES / "alliances.yaml"), "--current", str(EXAMPLES / "current.json")))

    assert capsys.readouterr().err == ""
    assert len(solver.questions) == 1


# --- with the real solver ------------------------------------------------------------------------------

needs_solver = pytest.mark.skipif(REAL_SOLVE is None, reason="samizdat.core.placement.solve does not exist yet")


@needs_solver
def test_examples_place_three_replicas_outside_five_eyes(capsys: pytest.CaptureFixture[str]) -> None:
    status = plan(*examples("-o", "json"))

    result = json.loads(capsys.readouterr().out)
    placed = [member for member in result["members"] if member["replicas"]]
    assert status == 0
    assert sum(member["replicas"] for member in placed) == 3
    assert len({member["country"] for member in placed}) == 3
    assert not any("five-eyes" in member["alliances"] for member in placed)
    assert not any(member["cluster"] in ("us-west-a100", "fr-paris-h100") for member in placed)
    assert all(member["reasons"] for member in result["members"] if member["cluster"] == "us-west-a100")


@needs_solver
def test_examples_become_infeasible_when_only_one_country_is_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = yaml.safe_load((EXAMPLES / "workload.yaml").read_text(encoding="utf-8"))
    workload["spec"]["placement"] = {"allowedJurisdictions": ["DE"], "maxPerCluster": 1}

    status = plan("--clusters", str(EXAMPLES / "clusters.yaml"), "--workload", write(tmp_path, "w.yaml", workload))

    assert status == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("infeasible, binding rule ")


DEGRADING = {"minJurisdictions": 3, "maxPerJurisdiction": 2, "deniedAlliances": ["five-eyes"],
             "deniedJurisdictions": ["CH"]}  # leaves DE and IS: two jurisdictions for three replicas


@needs_solver
@pytest.mark.parametrize(
    ("when", "status", "summary"),
    [
        pytest.param({}, 0, "feasible, spread degraded: 3 replicas on 2 members in 2 jurisdictions (DE, IS) across 2"
                     " providers; minJurisdictions 3 not met: 2 reached, 1 short (needs 3 jurisdictions, only 2",
                     id="schedule-anyway-by-default"),
        pytest.param({"whenUnsatisfiable": "DoNotSchedule"}, 1, "infeasible, binding rule minJurisdictions: needs 3",
                     id="do-not-schedule"),
    ],
)  # fmt: skip
def test_unmet_spread_minimum_degrades_or_blocks_as_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], when: dict[str, str], status: int, summary: str
) -> None:
    workload = yaml.safe_load((EXAMPLES / "workload.yaml").read_text(encoding="utf-8"))
    workload["spec"]["placement"] = {**DEGRADING, **when}
    path = write(tmp_path, "w.yaml", workload)

    assert plan("--clusters", str(EXAMPLES / "clusters.yaml"), "--workload", path) == status
    assert capsys.readouterr().out.splitlines()[-1].startswith(summary)
    plan("--clusters", str(EXAMPLES / "clusters.yaml"), "--workload", path, "-o", "json")
    result = json.loads(capsys.readouterr().out)
    assert result["degraded"] == (status == 0)
    expected = [{"rule": "minJurisdictions", "required": 3, "reached": 2, "missing": 1}] if status == 0 else []
    assert result["shortfalls"] == expected
    assert sum(result["assignments"].values()) == (3 if status == 0 else 0)
