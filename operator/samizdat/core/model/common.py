"""Building blocks shared by every samizdat resource: the base model, field types, conditions, CEL rules.

The pydantic models in this package are the single source of truth for the CRDs in `crds/`
(`samizdat.core.model.crds` renders them), so a constraint is written once, here, and both the apiserver
and the Python side enforce it. Field docstrings become the CRD descriptions that `kubectl explain`
shows, which is why they are written for a user rather than for a reader of this code.
"""

from __future__ import annotations

from collections.abc import Hashable
from enum import StrEnum
from typing import Annotated, Any, Final, Generic, Literal, NamedTuple, TypeVar

from pydantic import AfterValidator, AliasGenerator, AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, Strict
from pydantic.alias_generators import to_camel

API_VERSION: Final[Literal["samizdat.io/v1alpha1"]] = "samizdat.io/v1alpha1"
GROUP, _, VERSION = API_VERSION.partition("/")

# Counts that end up in Deployment/Job replica fields are int32 there; bounding them here also keeps
# the CEL products in `ai_workload` far from int64 overflow.
INT32_MAX: Final = 2**31 - 1
# ISO 3166-1 has 249 codes; a list of countries can never usefully be longer. CEL cost estimation
# needs the bound.
MAX_COUNTRIES: Final = 250


class Model(BaseModel):
    """Frozen, strict about unknown fields, camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=AliasGenerator(alias=to_camel),
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
    )


class CelRule(NamedTuple):
    """One `x-kubernetes-validations` entry; the model that carries it enforces the same rule in Python."""

    rule: str
    message: str
    # The field the apiserver blames, relative to the object carrying the rule, so `kubectl apply`
    # points at the field to fix rather than at the whole object.
    field_path: str

    def schema(self) -> dict[str, JsonValue]:
        return {"rule": self.rule, "message": self.message, "fieldPath": self.field_path}


def cel_rules(*rules: CelRule) -> ConfigDict:
    """Model config that publishes `rules` in the JSON schema, and from there in the CRD."""
    return ConfigDict(json_schema_extra={"x-kubernetes-validations": [rule.schema() for rule in rules]})


def enforce(holds: bool, rule: CelRule) -> None:
    """The Python half of a CEL rule: fail with the same message the apiserver would give."""
    if not holds:
        raise ValueError(rule.message)


H = TypeVar("H", bound=Hashable)


def unique(items: tuple[H, ...]) -> tuple[H, ...]:
    """Mirrors `x-kubernetes-list-type: set`, with which the apiserver rejects duplicate entries."""
    if len(set(items)) != len(items):
        raise ValueError("list entries must be unique")
    return items


def list_set(max_items: int) -> Any:
    """Field constraints of a bounded list with set semantics; put it before `AfterValidator(unique)`,
    as pydantic only turns `max_length` into `maxItems` when it comes before any validator."""
    return Field(max_length=max_items, json_schema_extra={"x-kubernetes-list-type": "set"})


def list_map(*keys: str) -> dict[str, Any]:
    """Schema marks for a list of objects keyed by `keys`, so server-side apply merges entries by key."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


# Conditions are keyed by type, as metav1.Condition lists are.
CONDITIONS: Final = list_map("type")

CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", min_length=2, max_length=2)]
"""An ISO 3166-1 alpha-2 code, upper case. Whether the code is assigned is checked by `jurisdictions`."""

CountryCodes = Annotated[tuple[CountryCode, ...], list_set(MAX_COUNTRIES), AfterValidator(unique)]

# A DNS-1123 label: namespaces, and the names of Alliance objects as workloads refer to them.
DNSLabel = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", min_length=1, max_length=63)]
# A DNS-1123 subdomain: names of Secrets and of cluster-scoped objects.
DNSSubdomain = Annotated[
    str,
    Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", min_length=1, max_length=253),
]

# Scalars are strict: the apiserver refuses "3" for an integer and "true" for a boolean, so the models
# must not quietly coerce them (lax pydantic would), or `samizdat plan` would accept what kubectl refuses.
Flag = Annotated[bool, Strict()]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
NonNegativeNumber = Annotated[float, Strict(), Field(ge=0)]
Count = Annotated[int, Strict(), Field(ge=0, le=INT32_MAX)]
PositiveCount = Annotated[int, Strict(), Field(ge=1, le=INT32_MAX)]


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


ConditionTypeT = TypeVar("ConditionTypeT", bound=StrEnum)


class Condition(Model, Generic[ConditionTypeT]):
    """One aspect of the object's state, as in metav1.Condition."""

    type: ConditionTypeT
    """Which aspect this condition describes."""
    status: ConditionStatus
    """Whether the condition holds: True, False or Unknown."""
    reason: Annotated[str, Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", min_length=1, max_length=1024)]
    """Why the condition last changed, as one CamelCase word."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable details of the last change."""
    last_transition_time: AwareDatetime
    """When the status last changed."""
    observed_generation: NonNegativeInt | None = None
    """The metadata.generation this condition was computed from."""


class ObjectMeta(Model):
    """The part of metadata samizdat reads. The apiserver owns metadata, so other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(min_length=1, max_length=253)]
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None
    resource_version: str | None = None

