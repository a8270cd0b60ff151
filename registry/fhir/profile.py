"""Our examination-record profiles, enforced on a structurally valid R4B Bundle.

fhir.resources checks shapes and primitive formats only; everything in fhir_profiles/ that it
does not check (code bindings, cardinalities, reference targets, bundle integrity, dates) is
checked here and in the modules this one calls, and the ExaminationRecord is extracted in the
same pass. This module covers the Bundle header, Composition, Encounter, clinic, physician,
Consent and signature; person.py the Patient; results.py Observations and ServiceRequests.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from registry.errors import InvalidResource
from registry.fhir import models
from registry.fhir.bundle_index import BundleIndex
from registry.fhir.context import CheckContext, Entry, quoted
from registry.fhir.person import check_person, check_related_persons, display_name
from registry.fhir.record import ExaminationRecord, SignatureData
from registry.fhir.results import check_referrals, check_results
from registry.fhir.terminology import (
    CANONICAL_BASE,
    CLINIC_ID,
    CLINIC_SYSTEM,
    COMPOSITION_SECTION_VS,
    CONSENT_PROVISION_VS,
    DOCUMENT_TYPE_VS,
    EXAM_PURPOSE_VS,
    EXAMINATION_SYSTEM,
    Terminology,
)

LICENCE_SYSTEM_PREFIX = f"{CANONICAL_BASE}/sid/practitioner-licence/"
DESTINATION_URL = f"{CANONICAL_BASE}/StructureDefinition/destination-country"
PREVIOUS_EXAMINATION_URL = f"{CANONICAL_BASE}/StructureDefinition/previous-examination"
SIGNATURE_TYPE_SYSTEM = "urn:iso-astm:E1762-95:2013"
SIGNATURE_TYPE_CODE = "1.2.840.10065.1.12.1.1"  # author's signature
SIGNATURE_FORMAT = "application/jose"
ABSOLUTE_URI = re.compile(r"^(https?://\S+|urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:\S+)$")
REQUIRED_SECTIONS = ("identity", "results")


def check_examination(
    bundle: models.Bundle, raw: dict[str, Any], terms: Terminology, today: datetime.date
) -> ExaminationRecord:
    """Enforce our profiles on a parsed Bundle and extract the record; raise InvalidResource."""
    ctx = CheckContext(terms, today)
    record = _ExaminationCheck(ctx, bundle, raw).run()
    if ctx.issues or record is None:
        if not ctx.issues:
            ctx.fail("invalid", "Bundle", "the bundle is not a valid examination record")
        raise InvalidResource(issues=ctx.issues)
    return record


class _ExaminationCheck:
    def __init__(self, ctx: CheckContext, bundle: models.Bundle, raw: dict[str, Any]) -> None:
        self.ctx = ctx
        self.bundle = bundle
        self.raw = raw
        self.index = BundleIndex(ctx, bundle)

    def run(self) -> ExaminationRecord | None:
        ctx, index = self.ctx, self.index
        identifier = self._header()
        composition = self._composition_entry()
        patient = index.single("Patient")
        if composition is None or patient is None:
            return None
        purpose, destination, previous = self._composition(composition)
        examination_date = self._examination_date(composition)
        document_date = self._document_date(composition, examination_date)
        clinic = self._clinic(composition)
        licence, practitioner_name = self._practitioner(composition)
        person = check_person(ctx, patient, examination_date)
        related = check_related_persons(ctx, index, patient, person, examination_date)
        consent_given, allows_history = self._consent(patient)
        results = check_results(ctx, index, examination_date, document_date)
        referrals = check_referrals(ctx, index)
        signature = self._signature(clinic)
        self._timestamp(examination_date)
        if (
            identifier is None
            or purpose is None
            or examination_date is None
            or person is None
            or clinic is None
            or licence is None
            or practitioner_name is None
        ):
            return None
        return ExaminationRecord(
            bundle=self.raw,
            identifier_system=identifier[0],
            identifier_value=identifier[1],
            purpose=purpose,
            destination=destination,
            examination_date=examination_date,
            clinic_id=clinic[1],
            practitioner_licence=licence,
            practitioner_name=practitioner_name,
            person=person,
            consent_given=consent_given,
            consent_allows_history=allows_history,
            results=results,
            referrals=referrals,
            previous_examination=previous,
            signature=signature,
            related_persons=related,
        )

    # -- Bundle ---------------------------------------------------------------------------

    def _header(self) -> tuple[str, str] | None:
        ctx = self.ctx
        if self.bundle.type != "document":
            ctx.fail(
                "value",
                "Bundle.type",
                f"Bundle.type must be document, not {quoted(self.bundle.type)}",
            )
        identifier = self.bundle.identifier
        if identifier is None:
            ctx.fail("required", "Bundle.identifier", "the clinic's examination number is required")
            return None
        system = identifier.system or ""
        value = (identifier.value or "").strip()
        if not system:
            ctx.fail("required", "Bundle.identifier.system", "the clinic's URI is required")
        elif not ABSOLUTE_URI.match(system):
            ctx.fail("value", "Bundle.identifier.system", "the system must be an absolute URI")
        if not value:
            ctx.fail("required", "Bundle.identifier.value", "the examination number is required")
        if not value or not ABSOLUTE_URI.match(system):
            return None
        return system, value

    def _timestamp(self, examination_date: datetime.date | None) -> None:
        when = self.ctx.full_date(self.bundle.timestamp, "Bundle.timestamp", "Bundle.timestamp")
        if when is not None and examination_date is not None and when < examination_date:
            self.ctx.fail("invariant", "Bundle.timestamp", "the bundle predates the examination")

    # -- Composition ----------------------------------------------------------------------

    def _composition_entry(self) -> Entry | None:
        entries = self.index.entries
        if not entries or entries[0].resource_type != "Composition" or entries[0].index != 0:
            where = "Bundle.entry[0].resource" if self.bundle.entry else "Bundle.entry"
            self.ctx.fail(
                "invariant", where, "the first entry of a document must be its Composition"
            )
        compositions = self.index.of_type("Composition")
        if not compositions:
            self.ctx.fail("required", "Bundle.entry", "an examination record needs a Composition")
            return None
        for extra in compositions[1:]:
            self.ctx.fail("invariant", extra.loc, "an examination record has one Composition")
        return compositions[0]

    def _composition(self, entry: Entry) -> tuple[str | None, str | None, str | None]:
        ctx = self.ctx
        composition: models.Composition = entry.resource
        loc = entry.loc
        if composition.status != "final":
            problem = f"Composition.status must be final, not {quoted(composition.status)}"
            ctx.fail("value", f"{loc}.status", problem)
        if not ctx.codes_in([composition.type], DOCUMENT_TYPE_VS):
            problem = "Composition.type must be document-type#examination-record"
            ctx.fail("code-invalid", f"{loc}.type", problem)
        purposes = ctx.codes_in(composition.category or [], EXAM_PURPOSE_VS)
        purpose = purposes[0] if len(purposes) == 1 else None
        if purpose is None:
            problem = "is required" if not purposes else "must be given once"
            ctx.fail("code-invalid", f"{loc}.category", f"the exam-purpose code {problem}")
        destination, previous = self._composition_extensions(composition, loc)
        if purpose == "pre-departure" and not any(
            extension.url == DESTINATION_URL for extension in composition.extension or []
        ):
            problem = "a pre-departure examination needs a destination country"
            ctx.fail("required", f"{loc}.extension", problem)
        self.index.target(entry, composition.subject, "subject", "Patient", required=True)
        self._sections(composition, loc)
        return purpose, destination, previous

    def _composition_extensions(
        self, composition: models.Composition, loc: str
    ) -> tuple[str | None, str | None]:
        ctx = self.ctx
        destination: str | None = None
        previous: str | None = None
        for index, extension in enumerate(composition.extension or []):
            ext_loc = f"{loc}.extension[{index}]"
            if extension.url == DESTINATION_URL:
                code = extension.valueCode
                if destination is not None:
                    ctx.fail("invariant", ext_loc, "only one destination country is allowed")
                elif not ctx.terms.is_country(code):
                    problem = f"destination {quoted(code)} is not an ISO 3166-1 alpha-2 code"
                    ctx.fail("code-invalid", f"{ext_loc}.valueCode", problem)
                else:
                    destination = code
            elif extension.url == PREVIOUS_EXAMINATION_URL:
                identifier = extension.valueIdentifier
                value = (identifier.value or "").strip() if identifier is not None else ""
                if identifier is None or identifier.system != EXAMINATION_SYSTEM or not value:
                    problem = (
                        f"previous-examination needs a valueIdentifier in {EXAMINATION_SYSTEM}"
                    )
                    ctx.fail("value", f"{ext_loc}.valueIdentifier", problem)
                else:
                    previous = value
        return destination, previous

    def _sections(self, composition: models.Composition, loc: str) -> None:
        ctx = self.ctx
        listed: dict[str, set[int]] = {}
        for index, section in enumerate(composition.section or []):
            codes = ctx.codes_in([section.code], COMPOSITION_SECTION_VS)
            if len(codes) != 1:
                problem = "each section needs one composition-section code"
                ctx.fail("code-invalid", f"{loc}.section[{index}].code", problem)
                continue
            targets = listed.setdefault(codes[0], set())
            for reference in section.entry or []:
                target = self.index.resolve(reference.reference)
                if target is not None:
                    targets.add(target.index)
        for required in REQUIRED_SECTIONS:
            if required not in listed:
                problem = f"the Composition needs a '{required}' section"
                ctx.fail("required", f"{loc}.section", problem)
        if self.index.of_type("ServiceRequest") and "referrals" not in listed:
            problem = "referrals need a 'referrals' section"
            ctx.fail("required", f"{loc}.section", problem)
        for resource_type, code in (("Observation", "results"), ("ServiceRequest", "referrals")):
            for item in self.index.of_type(resource_type):
                if code in listed and item.index not in listed[code]:
                    problem = f"this {resource_type} is missing from the '{code}' section"
                    ctx.fail("invariant", item.loc, problem)

    # -- dates ----------------------------------------------------------------------------

    def _examination_date(self, composition: Entry) -> datetime.date | None:
        resource: models.Composition = composition.resource
        self.index.single("Encounter")
        target = self.index.target(
            composition, resource.encounter, "encounter", "Encounter", required=True
        )
        if target is None:
            return None
        encounter: models.Encounter = target.resource
        self.index.target(target, encounter.subject, "subject", "Patient", required=True)
        if encounter.status != "finished":
            problem = f"Encounter.status must be finished, not {quoted(encounter.status)}"
            self.ctx.fail("value", f"{target.loc}.status", problem)
        start = encounter.period.start if encounter.period is not None else None
        label = "the examination date (Encounter.period.start)"
        return self.ctx.full_date(start, f"{target.loc}.period.start", label)

    def _document_date(
        self, composition: Entry, examination_date: datetime.date | None
    ) -> datetime.date | None:
        resource: models.Composition = composition.resource
        where = f"{composition.loc}.date"
        document_date = self.ctx.full_date(resource.date, where, "Composition.date")
        if document_date and examination_date and document_date < examination_date:
            self.ctx.fail("invariant", where, "the document is dated before the examination")
        return document_date

    # -- clinic and physician ---------------------------------------------------------------

    def _clinic(self, composition: Entry) -> tuple[Entry, str] | None:
        ctx = self.ctx
        resource: models.Composition = composition.resource
        target = self.index.target(
            composition, resource.custodian, "custodian", "Organization", required=True
        )
        if target is None:
            return None
        organization: models.Organization = target.resource
        where = f"{target.loc}.identifier"
        clinic_ids = [
            i.value for i in organization.identifier or [] if i.system == CLINIC_SYSTEM and i.value
        ]
        if len(clinic_ids) != 1:
            ctx.fail("required", where, f"the clinic needs one registry id ({CLINIC_SYSTEM})")
            return None
        clinic_id = clinic_ids[0]
        match = CLINIC_ID.match(clinic_id)
        if not match or not ctx.terms.is_country(match.group(1)):
            ctx.fail(
                "value",
                where,
                f"clinic id {quoted(clinic_id)} is not CC-AAA-9999 with an ISO country",
            )
            return None
        if not (organization.name or "").strip():
            ctx.fail("required", f"{target.loc}.name", "the clinic needs a name")
        return target, clinic_id

    def _practitioner(self, composition: Entry) -> tuple[str | None, str | None]:
        ctx = self.ctx
        resource: models.Composition = composition.resource
        authors = [
            target
            for reference in resource.author or []
            if (
                target := self.index.target(
                    composition, reference, "author", "Practitioner", required=False
                )
            )
            is not None
        ]
        if not authors:
            problem = "the authors must include the examining Practitioner"
            ctx.fail("required", f"{composition.loc}.author", problem)
            return None, None
        entry = authors[0]
        practitioner: models.Practitioner = entry.resource
        licences = [
            (identifier.value or "").strip()
            for identifier in practitioner.identifier or []
            if (identifier.system or "").startswith(LICENCE_SYSTEM_PREFIX)
            and ctx.terms.is_country((identifier.system or "").removeprefix(LICENCE_SYSTEM_PREFIX))
            and (identifier.value or "").strip()
        ]
        if not licences:
            problem = f"the physician needs a licence identifier ({LICENCE_SYSTEM_PREFIX}<country>)"
            ctx.fail("required", f"{entry.loc}.identifier", problem)
        name = display_name(practitioner.name or [])
        if name is None:
            ctx.fail(
                "required", f"{entry.loc}.name", "the physician needs a name with a family name"
            )
        return (licences[0] if licences else None), name

    # -- consent --------------------------------------------------------------------------

    def _consent(self, patient: Entry) -> tuple[bool, bool]:
        ctx = self.ctx
        consents = self.index.of_type("Consent")
        if not consents:
            ctx.fail("required", "Bundle.entry", "the Consent to registry processing is required")
            return False, False
        given = False
        allows_history = False
        for entry in consents:
            consent: models.Consent = entry.resource
            if consent.status != "active":
                problem = f"Consent.status must be active, not {quoted(consent.status)}"
                ctx.fail("value", f"{entry.loc}.status", problem)
                continue
            target = self.index.target(entry, consent.patient, "patient", "Patient", required=True)
            if target is not None and target.index != patient.index:
                ctx.fail(
                    "invalid", f"{entry.loc}.patient", "the Consent is not the examined person's"
                )
                continue
            provision = consent.provision
            if provision is None or provision.type != "permit":
                problem = "the Consent must permit registry processing (provision.type permit)"
                ctx.fail("required", f"{entry.loc}.provision", problem)
                continue
            ctx.full_date(
                consent.dateTime, f"{entry.loc}.dateTime", "Consent.dateTime", required=False
            )
            given = True
            for index, nested in enumerate(provision.provision or []):
                codes = ctx.codes_in(nested.code or [], CONSENT_PROVISION_VS)
                if not codes:
                    where = f"{entry.loc}.provision.provision[{index}].code"
                    ctx.fail(
                        "code-invalid", where, "a nested provision needs a consent-provision code"
                    )
                elif "share-history" in codes:
                    allows_history = nested.type == "permit"
        return given, allows_history

    # -- signature ------------------------------------------------------------------------

    def _signature(self, clinic: tuple[Entry, str] | None) -> SignatureData | None:
        ctx = self.ctx
        signature = self.bundle.signature
        if signature is None:
            return None
        ok = True
        if not any(
            coding.system == SIGNATURE_TYPE_SYSTEM and coding.code == SIGNATURE_TYPE_CODE
            for coding in signature.type or []
        ):
            problem = f"the type must be {SIGNATURE_TYPE_SYSTEM}#{SIGNATURE_TYPE_CODE}"
            ctx.fail("code-invalid", "Bundle.signature.type", problem)
            ok = False
        when: object = signature.when
        if not isinstance(when, datetime.datetime) or when.tzinfo is None:
            problem = "signature.when must be a date-time with a time zone"
            ctx.fail("value", "Bundle.signature.when", problem)
            ok = False
        elif ctx.full_date(when, "Bundle.signature.when", "signature.when") is None:
            ok = False
        who = signature.who.reference if signature.who is not None else None
        if who is None:
            problem = "signature.who must reference the clinic Organization"
            ctx.fail("required", "Bundle.signature.who", problem)
            ok = False
        elif clinic is not None and self.index.resolve(who) is not clinic[0]:
            problem = "the signature must be the custodian clinic's"
            ctx.fail("invalid", "Bundle.signature.who.reference", problem)
            ok = False
        if signature.sigFormat != SIGNATURE_FORMAT:
            problem = f"signature.sigFormat must be {SIGNATURE_FORMAT}"
            ctx.fail("value", "Bundle.signature.sigFormat", problem)
            ok = False
        # The base64 text as submitted: the models decode it to bytes, verifiers need the text.
        raw_signature = self.raw.get("signature")
        data = raw_signature.get("data") if isinstance(raw_signature, dict) else None
        if not isinstance(data, str) or not data:
            problem = "signature.data (base64 of the detached JWS) is required"
            ctx.fail("required", "Bundle.signature.data", problem)
            ok = False
        if (
            not ok
            or not isinstance(when, datetime.datetime)
            or who is None
            or not isinstance(data, str)
        ):
            return None
        return SignatureData(when=when, who_reference=who, sig_format=SIGNATURE_FORMAT, data=data)
