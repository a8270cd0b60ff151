"""Our conformance resources as a read-only FHIR server serves them, and its CapabilityStatement.

The StructureDefinitions, ValueSets, CodeSystems and ConceptMap of `fhir_profiles/` and the
Measures of `fhir_profiles/measures/` are the published profile; examples and rulesets are not
conformance resources and are not served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

FHIR_VERSION = "4.3.0"  # R4B
CONFORMANCE_TYPES = ("StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap", "Measure")
SERVED_DIRECTORIES = (".", "measures")


@dataclass(frozen=True)
class ConformanceResources:
    """Every served resource by type and id."""

    by_type: dict[str, dict[str, dict[str, Any]]]

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """One resource, or None."""
        return self.by_type.get(resource_type, {}).get(resource_id)

    def search(self, resource_type: str, *, url: str | None = None) -> list[dict[str, Any]]:
        """Every resource of a type, optionally the one with a canonical URL."""
        found = sorted(self.by_type.get(resource_type, {}).values(), key=lambda r: r["id"])
        return [r for r in found if url is None or r.get("url") == url]


@cache
def load(profiles_dir: Path) -> ConformanceResources:
    """Read the conformance resources once per profile folder."""
    by_type: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in CONFORMANCE_TYPES}
    for folder in SERVED_DIRECTORIES:
        for path in sorted((profiles_dir / folder).glob("*.json")):
            resource = json.loads(path.read_text("utf-8"))
            kind = resource.get("resourceType")
            if kind in by_type and resource.get("id"):
                by_type[kind][resource["id"]] = resource
    return ConformanceResources(by_type)


def searchset(resources: list[dict[str, Any]], *, base_url: str) -> dict[str, Any]:
    """A searchset Bundle of resources."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"{base_url}/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def capability_statement(*, base_url: str, software_version: str, date: str) -> dict[str, Any]:
    """What the read-only FHIR endpoint offers."""
    conformance = [
        {
            "type": kind,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": "url", "type": "uri"}],
        }
        for kind in CONFORMANCE_TYPES
    ]
    bundle = {
        "type": "Bundle",
        "profile": "https://exam-registry.org/fhir/StructureDefinition/examination-bundle",
        "interaction": [{"code": "read"}],
        "documentation": (
            "An examination Bundle exactly as signed, by examination id, for the examining "
            "clinic's bearer token only (the same as GET /api/v1/examinations/{id}). "
            "Submissions go through POST /api/v1/examinations."
        ),
    }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Cross-border medical examination registry",
        "kind": "instance",
        "software": {"name": "registry", "version": software_version},
        "implementation": {
            "description": "Read-only FHIR R4B endpoint of the examination registry",
            "url": f"{base_url}/fhir",
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": (
                                        "http://terminology.hl7.org/CodeSystem/"
                                        "restful-security-service"
                                    ),
                                    "code": "SMART-on-FHIR",
                                }
                            ],
                            "text": "OAuth 2.0 client credentials with private_key_jwt",
                        }
                    ],
                    "description": f"Tokens from {base_url}/oauth/token",
                },
                "resource": [bundle, *conformance],
            }
        ],
    }
