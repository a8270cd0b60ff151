"""The one module that imports fhir.resources: R4B models, structural parsing, reference walking.

Everything else in the registry sees FHIR through the names exported here, so the library
choice (and its quirks) stays in one place.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pydantic
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.composition import Composition, CompositionSection
from fhir.resources.R4B.consent import Consent, ConsentProvision
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.relatedperson import RelatedPerson
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.signature import Signature

__all__ = [
    "Attachment",
    "Bundle",
    "BundleEntry",
    "CodeableConcept",
    "Coding",
    "Composition",
    "CompositionSection",
    "Consent",
    "ConsentProvision",
    "DiagnosticReport",
    "ElementPath",
    "Encounter",
    "Extension",
    "HumanName",
    "Identifier",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "Reference",
    "RelatedPerson",
    "Resource",
    "ServiceRequest",
    "Signature",
    "StructureError",
    "StructureProblem",
    "is_resource_type",
    "iter_references",
    "parse_bundle",
]

ElementPath = tuple[str | int, ...]

_ELEMENT_NAME = re.compile(r"^_?[A-Za-z][A-Za-z0-9]*$")
_MISSING = {"missing", "model_field_validation.missing"}


@dataclass(frozen=True)
class StructureProblem:
    """One way the JSON fails the FHIR R4 structure: where, what, and a FHIR issue-type code."""

    path: ElementPath
    message: str
    code: str


class StructureError(Exception):
    """The bundle does not fit the FHIR R4 structure; carries every problem found."""

    def __init__(self, problems: list[StructureProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems[:3]))
        self.problems = problems


def is_resource_type(name: str) -> bool:
    """Whether name is a FHIR R4B resource type (not a data type)."""
    try:
        cls = get_fhir_model_class(name)
    except (ValueError, KeyError):
        return False
    return issubclass(cls, Resource)


def parse_bundle(data: dict[str, Any]) -> Bundle:
    """Validate a Bundle against the R4B models; raise StructureError listing every problem."""
    try:
        return Bundle.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [_problem(error) for error in exc.errors(include_url=False, include_input=False)]
        raise StructureError(problems) from None
    except Exception as exc:
        # fhir.resources raises bare KeyError / TypeError on some malformed resources
        # (e.g. an unknown resourceType nested where a resource is expected).
        message = f"resource structure could not be read ({type(exc).__name__})"
        raise StructureError([StructureProblem((), message, "structure")]) from None


def iter_references(
    node: pydantic.BaseModel, prefix: ElementPath = ()
) -> Iterator[tuple[ElementPath, Reference, tuple[str, ...]]]:
    """Yield (path, Reference, target types allowed by FHIR) for every Reference under node."""
    stack: list[tuple[ElementPath, pydantic.BaseModel]] = [(prefix, node)]
    while stack:
        path, current = stack.pop()
        children: list[tuple[ElementPath, pydantic.BaseModel]] = []
        values = current.__dict__
        for name, key, targets in _element_fields(type(current)):
            value = values.get(name)
            if value is None:
                continue
            items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
            for index, item in items:
                item_path = (*path, key) if index is None else (*path, key, index)
                if isinstance(item, Reference):
                    yield item_path, item, targets
                elif isinstance(item, pydantic.BaseModel):
                    children.append((item_path, item))
        stack.extend(reversed(children))


_ElementField = tuple[str, str, tuple[str, ...]]


@functools.cache
def _element_fields(model: type[pydantic.BaseModel]) -> tuple[_ElementField, ...]:
    """A model's fields as (attribute, element name, Reference targets), read once per class."""
    fields = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        raw_targets = extra.get("enum_reference_types") or []
        targets = tuple(str(t) for t in raw_targets) if isinstance(raw_targets, list) else ()
        fields.append((name, field.alias or name, targets))
    return tuple(fields)


def _problem(error: Any) -> StructureProblem:
    path = tuple(
        part
        for part in error.get("loc", ())
        if isinstance(part, int) or _ELEMENT_NAME.match(str(part))
    )
    # pydantic adds the synthetic 'root' step for wrapped models; it is not a FHIR element.
    path = tuple(part for part in path if part != "root")
    kind = str(error.get("type", ""))
    if kind in _MISSING:
        code = "required"
    elif kind == "extra_forbidden":
        code = "structure"
    else:
        code = "value"
    message = str(error.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        message = "unknown element"
    return StructureProblem(path, message, code)
