"""The Alliance resource: a named group of countries that workloads can deny or cap as one.

Built-in alliances (five-eyes, eu, ...) ship as Alliance objects too; `samizdat.core.jurisdictions` owns
them and merges them with the ones users create.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field

from samizdat.core.model.common import API_VERSION, CountryCodes, Model, ObjectMeta

ALLIANCE: Final = "Alliance"


class AllianceSpec(Model):
    """The countries of the alliance and where that membership is documented."""

    members: CountryCodes
    """Member countries, ISO 3166-1 alpha-2 codes."""
    description: Annotated[str, Field(max_length=1024)] = ""
    """What the alliance is."""
    source: Annotated[str, Field(max_length=2048)] = ""
    """Where the membership list comes from: a URL or a citation."""


class Alliance(Model):
    """A group of countries (e.g. an intelligence-sharing pact) that placement rules can refer to by name."""

    api_version: Literal["samizdat.io/v1alpha1"] = API_VERSION
    kind: Literal["Alliance"] = ALLIANCE
    metadata: ObjectMeta
    spec: AllianceSpec
