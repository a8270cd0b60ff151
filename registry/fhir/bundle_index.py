"""Bundle integrity: entries, fullUrls, and references that must resolve inside the bundle."""

from __future__ import annotations

import re
import uuid

from registry.fhir import models
from registry.fhir.context import CheckContext, Entry, quoted

ALLOWED_RESOURCE_TYPES = frozenset(
    {
        "Composition",
        "Patient",
        "Organization",
        "Practitioner",
        "Encounter",
        "Consent",
        "Observation",
        "ServiceRequest",
        "DiagnosticReport",
        "RelatedPerson",
    }
)

URN_UUID = re.compile(r"^urn:uuid:([0-9a-fA-F-]{36})$")
RELATIVE_REFERENCE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")
ABSOLUTE_RESOURCE_URL = re.compile(r"^https?://\S+/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")

# Reference targets our profiles narrow beyond FHIR's; keyed by (resource type, element).
NARROWED_TARGETS: dict[tuple[str, str], frozenset[str]] = {
    ("Composition", "subject"): frozenset({"Patient"}),
    ("Composition", "encounter"): frozenset({"Encounter"}),
    ("Composition", "author"): frozenset({"Practitioner", "Organization"}),
    ("Composition", "custodian"): frozenset({"Organization"}),
    ("Encounter", "subject"): frozenset({"Patient"}),
    ("Encounter", "serviceProvider"): frozenset({"Organization"}),
    ("Consent", "patient"): frozenset({"Patient"}),
    ("Observation", "subject"): frozenset({"Patient"}),
    ("Observation", "encounter"): frozenset({"Encounter"}),
    ("Observation", "performer"): frozenset({"Practitioner", "Organization"}),
    ("ServiceRequest", "subject"): frozenset({"Patient"}),
    ("ServiceRequest", "encounter"): frozenset({"Encounter"}),
    ("ServiceRequest", "requester"): frozenset({"Practitioner", "Organization"}),
    ("ServiceRequest", "performer"): frozenset({"Organization"}),
    ("DiagnosticReport", "subject"): frozenset({"Patient"}),
    ("RelatedPerson", "patient"): frozenset({"Patient"}),
    ("DiagnosticReport", "result"): frozenset({"Observation"}),
    ("Bundle", "signature"): frozenset({"Organization"}),
}


class BundleIndex:
    """The bundle's entries, addressable by fullUrl and by Type/id."""

    def __init__(self, ctx: CheckContext, bundle: models.Bundle) -> None:
        self.ctx = ctx
        self.entries: list[Entry] = []
        self.by_url: dict[str, Entry] = {}
        self.by_type_id: dict[tuple[str, str], Entry] = {}
        self._index(bundle)
        self._check_references(bundle)

    def of_type(self, resource_type: str) -> list[Entry]:
        """Entries holding this resource type, in bundle order."""
        return [entry for entry in self.entries if entry.resource_type == resource_type]

    def resolve(self, reference: str | None) -> Entry | None:
        """The entry a Reference.reference points to, if any."""
        if not reference:
            return None
        if reference in self.by_url:
            return self.by_url[reference]
        relative = RELATIVE_REFERENCE.match(reference)
        if relative:
            return self.by_type_id.get((relative.group(1), relative.group(2)))
        return None

    def target(
        self,
        owner: Entry,
        reference: models.Reference | None,
        element: str,
        resource_type: str,
        *,
        required: bool,
    ) -> Entry | None:
        """The entry of the expected type a reference resolves to (wrong targets are reported
        by the reference check, so they only yield None here)."""
        if reference is None or reference.reference is None:
            if required:
                problem = (
                    f"{owner.resource_type}.{element} must reference the bundle's {resource_type}"
                )
                self.ctx.fail("required", f"{owner.loc}.{element}", problem)
            return None
        target = self.resolve(reference.reference)
        if target is None or target.resource_type != resource_type:
            return None
        return target

    def single(self, resource_type: str) -> Entry | None:
        """The one entry of this type; issues if there is none or more than one."""
        found = self.of_type(resource_type)
        if not found:
            self.ctx.fail(
                "required", "Bundle.entry", f"an examination record needs a {resource_type}"
            )
            return None
        for extra in found[1:]:
            self.ctx.fail("invariant", extra.loc, f"an examination record has one {resource_type}")
        return found[0]

    def _index(self, bundle: models.Bundle) -> None:
        entries = bundle.entry or []
        if not entries:
            self.ctx.fail("required", "Bundle.entry", "an examination record needs entries")
        for index, bundle_entry in enumerate(entries):
            loc = f"Bundle.entry[{index}]"
            resource = bundle_entry.resource
            if resource is None:
                self.ctx.fail("required", f"{loc}.resource", "every document entry has a resource")
                continue
            entry = Entry(index, resource, resource.get_resource_type(), bundle_entry.fullUrl)
            self.entries.append(entry)
            if entry.resource_type not in ALLOWED_RESOURCE_TYPES:
                problem = f"{entry.resource_type} is not part of an examination record"
                self.ctx.fail("not-supported", entry.loc, problem)
            self._index_full_url(entry, loc)
            if resource.id:
                key = (entry.resource_type, resource.id)
                if key in self.by_type_id:
                    problem = f"two entries are {entry.resource_type}/{resource.id}"
                    self.ctx.fail("duplicate", f"{entry.loc}.id", problem)
                else:
                    self.by_type_id[key] = entry

    def _index_full_url(self, entry: Entry, loc: str) -> None:
        full_url = entry.full_url
        where = f"{loc}.fullUrl"
        if not full_url:
            self.ctx.fail("required", where, "every document entry needs a fullUrl")
            return
        uuid_match = URN_UUID.match(full_url)
        url_match = ABSOLUTE_RESOURCE_URL.match(full_url)
        if uuid_match:
            try:
                uuid.UUID(uuid_match.group(1))
            except ValueError:
                self.ctx.fail("value", where, f"{quoted(full_url)} is not a valid urn:uuid")
                return
        elif url_match:
            if (url_match.group(1), url_match.group(2)) != (entry.resource_type, entry.resource.id):
                self.ctx.fail("invariant", where, "fullUrl must end with the resource's Type/id")
        else:
            self.ctx.fail(
                "value", where, "fullUrl must be urn:uuid:<uuid> or a URL ending in Type/id"
            )
            return
        if full_url in self.by_url:
            self.ctx.fail("duplicate", where, f"fullUrl {quoted(full_url)} is used by two entries")
        else:
            self.by_url[full_url] = entry

    def _check_references(self, bundle: models.Bundle) -> None:
        for entry in self.entries:
            for path, reference, fhir_targets in models.iter_references(entry.resource):
                self._check_reference(entry.resource_type, entry.loc, path, reference, fhir_targets)
        if bundle.signature is not None:
            signature_refs = models.iter_references(bundle.signature, ("signature",))
            for path, reference, fhir_targets in signature_refs:
                self._check_reference("Bundle", "Bundle", path, reference, fhir_targets)

    def _check_reference(
        self,
        owner_type: str,
        owner_loc: str,
        path: models.ElementPath,
        reference: models.Reference,
        fhir_targets: tuple[str, ...],
    ) -> None:
        loc = owner_loc + path_text(path)
        text = reference.reference
        if text is None:
            if reference.identifier is None and reference.display is None:
                self.ctx.fail("required", loc, "a Reference needs a reference or an identifier")
            return
        where = f"{loc}.reference"
        if text.startswith("#"):
            self.ctx.fail("not-supported", where, "examination records use no contained resources")
            return
        target = self.resolve(text)
        if target is None:
            self.ctx.fail(
                "not-found", where, f"{quoted(text)} does not resolve to an entry of the bundle"
            )
            return
        element = str(path[0]) if path else ""
        allowed = NARROWED_TARGETS.get((owner_type, element))
        if allowed is None and fhir_targets and "Resource" not in fhir_targets:
            allowed = frozenset(fhir_targets)
        if allowed is not None and target.resource_type not in allowed:
            expected = " or ".join(sorted(allowed))
            problem = (
                f"{owner_type}.{element} must reference {expected}, not {target.resource_type}"
            )
            self.ctx.fail("invalid", where, problem)
        if reference.type is not None and reference.type != target.resource_type:
            problem = f"Reference.type is {reference.type} but the target is {target.resource_type}"
            self.ctx.fail("invalid", f"{loc}.type", problem)


def path_text(path: models.ElementPath) -> str:
    """('name', 0, 'family') -> '.name[0].family'."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
