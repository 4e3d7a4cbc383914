"""`samizdat plan`: where a workload would be placed over member clusters described in files, and why not.

It reads the same objects the operator reads from the hub (MemberCluster with status, AIWorkload,
Alliance), asks the same solver, and prints the decision with a reason for every member left out,
and, when it gives up a spread minimum to place every replica (`whenUnsatisfiable: ScheduleAnyway`),
which one and by how much. Exit status: 0 when the workload can be placed (degraded or not), 1 when it
cannot, 2 when the input is bad (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from samizdat.core import jurisdictions, model, placement
from samizdat.core.placement import from_model

Resource = TypeVar("Resource", model.MemberCluster, model.AIWorkload, model.Alliance)

# pydantic prefixes the messages of our own rules (model validators) with this.
_VALUE_ERROR = "Value error, "
_YAML_BOOLEAN_HINT = " (YAML reads unquoted NO, YES, ON and OFF as booleans: quote the value)"


class InputError(Exception):
    """Bad input, explained in one line that names the file."""


@dataclass(frozen=True, slots=True)
class Row:
    """One member in the plan: where it is, what it gets, and why it gets no more."""

    cluster: str
    country: str
    country_name: str
    provider: str
    alliances: tuple[str, ...]
    replicas: int
    current: int | None
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """The solver's decision laid out per member, ready to print."""

    rows: tuple[Row, ...]
    feasible: bool
    binding_rule: str | None
    explanation: str | None
    shortfalls: tuple[placement.Shortfall, ...] = ()

    @property
    def summary(self) -> str:
        if not self.feasible:
            rule = f", binding rule {self.binding_rule}" if self.binding_rule else ""
            return f"infeasible{rule}: {self.explanation or 'no member can take a replica'}"
        placed = [row for row in self.rows if row.replicas]
        countries = sorted({row.country for row in placed})
        where = (
            f"{sum(row.replicas for row in placed)} replicas on {len(placed)} members"
            f" in {len(countries)} jurisdictions ({', '.join(countries)})"
            f" across {len({row.provider for row in placed})} providers"
        )
        if not self.shortfalls:
            return f"feasible: {where}"
        short = "; ".join(str(shortfall) for shortfall in self.shortfalls)
        return f"feasible, spread degraded: {where}; {short} ({self.explanation})"


def main(args: argparse.Namespace) -> int:
    try:
        members = _load(Path(args.clusters), model.MemberCluster)
        (workload,) = _load(Path(args.workload), model.AIWorkload, exactly_one=True)
        alliances = _load(Path(args.alliances), model.Alliance) if args.alliances else []
        current = _load_current(Path(args.current)) if args.current else {}
        _check(members, workload, alliances, current)
    except InputError as error:
        print(f"samizdat plan: error: {error}", file=sys.stderr)
        return 2

    snapshot = from_model.to_snapshot(members, alliances, datetime.now(UTC))
    decision = placement.solve(snapshot, from_model.to_request(workload, current))
    plan = Plan(
        rows=tuple(
            Row(
                cluster=member.name,
                country=member.country,
                country_name=jurisdictions.country_name(member.country),
                provider=member.provider,
                alliances=jurisdictions.alliances_of(member.country, snapshot.alliances),
                replicas=decision.assignments.get(member.name, 0),
                current=current.get(member.name),
                notes=tuple(decision.diagnosis.get(member.name, ())),
            )
            for member in snapshot.members
        ),
        feasible=decision.feasible,
        binding_rule=decision.binding_rule,
        explanation=decision.explanation,
        shortfalls=decision.shortfalls,
    )
    print(_json(plan) if args.output == "json" else _table(plan))
    return 0 if plan.feasible else 1


def _load(path: Path, kind: type[Resource], exactly_one: bool = False) -> list[Resource]:
    """The objects of `kind` in a YAML file of one or more documents, each an object or a List of them."""
    expected = kind.model_fields["kind"].default
    objects = [_parse(path, document, kind) for document in _documents(path, expected)]
    if exactly_one and len(objects) != 1:
        raise InputError(f"{path}: expected exactly one {expected}, found {len(objects)}")
    if not objects:
        raise InputError(f"{path}: no {expected} found")
    return objects


def _documents(path: Path, expected: str) -> Iterator[Mapping[str, Any]]:
    text = _read(path)
    try:
        documents = [document for document in yaml.safe_load_all(text) if document is not None]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{path}: not valid YAML: {error.problem}{where}") from None
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML: {error}") from None
    for document in documents:
        # `kubectl get -o yaml` writes a List; hand-written files are usually several documents.
        is_list = isinstance(document, dict) and document.get("kind") in ("List", f"{expected}List")
        items = document.get("items") if is_list else None
        for item in items if isinstance(items, list) else [document]:
            if not isinstance(item, dict) or item.get("kind") != expected:
                found = item.get("kind") if isinstance(item, dict) else type(item).__name__
                raise InputError(f"{path}: expected {expected} objects, found {found!r}")
            yield item


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None


def _parse(path: Path, document: Mapping[str, Any], kind: type[Resource]) -> Resource:
    try:
        return kind.model_validate(document)
    except pydantic.ValidationError as error:
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        raise InputError(f"{path}: {document['kind']} {name!r}: {_first_error(error)}") from None


def _first_error(error: pydantic.ValidationError) -> str:
    details = error.errors()
    first = details[0]
    location = ".".join(str(part) for part in first["loc"]) or "(object)"
    message = first["msg"].removeprefix(_VALUE_ERROR)
    if first["type"] == "string_type" and isinstance(first["input"], bool):
        message += _YAML_BOOLEAN_HINT
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{location}: {message}{more}"


def _load_current(path: Path) -> dict[str, int]:
    text = _read(path)
    try:
        current = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(current, dict) or not all(
        isinstance(count, int) and not isinstance(count, bool) and count >= 0 for count in current.values()
    ):
        raise InputError(f"{path}: expected a JSON object of cluster name -> replicas (an integer >= 0)")
    return current


def _check(
    members: Sequence[model.MemberCluster],
    workload: model.AIWorkload,
    alliances: Sequence[model.Alliance],
    current: Mapping[str, int],
) -> None:
    """Refuse what the schema cannot: duplicate names, unknown countries, alliances and clusters."""
    names = [member.metadata.name for member in members]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    problems = [f"MemberCluster {name!r} is defined more than once" for name in duplicates]
    for member in members:
        problems += [f"MemberCluster {member.metadata.name!r}: {p}" for p in jurisdictions.member_problems(member)]
    for alliance in alliances:
        problems += [f"Alliance {alliance.metadata.name!r}: {p}" for p in jurisdictions.alliance_problems(alliance)]
    table = jurisdictions.alliance_table(alliances)
    problems += [
        f"AIWorkload {workload.metadata.name!r}: {p}" for p in jurisdictions.workload_problems(workload, table)
    ]
    unknown = sorted(current.keys() - set(names))
    problems += [f"the current placement names an unknown MemberCluster {name!r}" for name in unknown]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(problems[0] + more)


def _notes(row: Row) -> str:
    moved = [f"was {row.current}"] if row.current is not None and row.current != row.replicas else []
    return "; ".join([*row.notes, *moved]) or "-"


def _table(plan: Plan) -> str:
    header = ("CLUSTER", "COUNTRY", "PROVIDER", "REPLICAS", "WHY NOT / NOTES")
    cells = [
        (row.cluster, f"{row.country} ({row.country_name})", row.provider, str(row.replicas), _notes(row))
        for row in plan.rows
    ]
    # Every column but the last is padded; the notes run as long as they need.
    widths = [max(len(line[column]) for line in [header, *cells]) for column in range(len(header) - 1)]
    lines = [
        "   ".join([*(cell.ljust(width) for cell, width in zip(line, widths)), line[-1]]) for line in [header, *cells]
    ]
    return "\n".join([*lines, "", plan.summary])


def _json(plan: Plan) -> str:
    return json.dumps(
        {
            "feasible": plan.feasible,
            "degraded": bool(plan.shortfalls),
            "shortfalls": [
                {"rule": s.rule, "required": s.required, "reached": s.reached, "missing": s.missing}
                for s in plan.shortfalls
            ],
            "bindingRule": plan.binding_rule,
            "explanation": plan.explanation,
            "summary": plan.summary,
            "assignments": {row.cluster: row.replicas for row in plan.rows if row.replicas},
            "members": [
                {
                    "cluster": row.cluster,
                    "country": row.country,
                    "countryName": row.country_name,
                    "provider": row.provider,
                    "alliances": list(row.alliances),
                    "replicas": row.replicas,
                    "currentReplicas": row.current,
                    "reasons": list(row.notes),
                }
                for row in plan.rows
            ],
        },
        indent=2,
    )
