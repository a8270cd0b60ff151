"""The examined person (Patient): names in several scripts, documents, birth date, photo."""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Sequence

from registry.fhir import models
from registry.fhir.bundle_index import BundleIndex
from registry.fhir.context import CheckContext, Entry, as_date, quoted
from registry.fhir.record import DocumentData, PersonData, PhotoData, RelatedPersonData
from registry.fhir.terminology import (
    CANONICAL_BASE,
    DEPENDANT_RELATIONSHIP_VS,
    IDENTITY_DOCUMENT_TYPE_VS,
    ISO_3166,
)

DOCUMENT_SYSTEM_PREFIX = f"{CANONICAL_BASE}/sid/identity-document/"
PATRONYMIC_URL = f"{CANONICAL_BASE}/StructureDefinition/patronymic"
CITIZENSHIP_URL = "http://hl7.org/fhir/StructureDefinition/patient-citizenship"
ADMINISTRATIVE_GENDER = frozenset({"male", "female", "other", "unknown"})
# Plausibility limits, documented in fhir_profiles/README.md.
MAX_AGE_YEARS = 100
AGE_OF_MAJORITY = 18  # below it, a parent or guardian is named and consents for the person
# v3 RoleCode of the worker to the examined person -> what the examined person is to the worker
DEPENDANT_ROLES = {
    "FTH": "child",
    "MTH": "child",
    "PRN": "child",
    "GUARD": "ward",
    "SPS": "spouse",
}
PHOTO_MAX_BYTES = 512 * 1024
# the longest names in the region's passports are well under these; beyond them a name only
# costs storage, blind-index work and space on the certificate
MAX_NAMES = 10
MAX_GIVEN_NAMES = 10
MAX_NAME_CHARACTERS = 100
PHOTO_TYPES = frozenset({"image/jpeg", "image/png"})


def check_person(
    ctx: CheckContext, entry: Entry, examination_date: datetime.date | None
) -> PersonData | None:
    """Check the Patient against the examined-person profile and extract PersonData."""
    patient: models.Patient = entry.resource
    loc = entry.loc
    sex_ok = _check_gender(ctx, patient.gender, f"{loc}.gender")
    birth_date = _birth_date(ctx, patient.birthDate, f"{loc}.birthDate", examination_date)
    names = _names(ctx, patient.name or [], loc)
    documents = _documents(ctx, patient.identifier or [], loc, examination_date)
    citizenship = _citizenship(ctx, patient.extension or [], loc)
    photo = _photo(ctx, patient.photo or [], loc)
    if not sex_ok or birth_date is None or names is None or documents is None:
        return None
    families, givens, patronymic, display = names
    return PersonData(
        family_names=families,
        given_names=givens,
        patronymic=patronymic,
        sex=str(patient.gender),
        birth_date=birth_date,
        citizenship=citizenship,
        documents=documents,
        photo=photo,
        display_name=display,
    )


def check_related_persons(
    ctx: CheckContext,
    index: BundleIndex,
    patient: Entry,
    person: PersonData | None,
    examination_date: datetime.date | None,
) -> list[RelatedPersonData]:
    """Check each RelatedPerson (the worker a dependant is examined with) and the rule for
    minors: a person under 18 is examined with a parent or guardian named."""
    related: list[RelatedPersonData] = []
    for entry in index.of_type("RelatedPerson"):
        found = _related_person(ctx, index, entry, patient, examination_date)
        if found is not None:
            related.append(found)
    if person is None or examination_date is None:
        return related
    minor = _age(person.birth_date, examination_date) < AGE_OF_MAJORITY
    guardians = [r for r in related if r.dependant_role in ("child", "ward")]
    every_one_valid = len(related) == len(index.of_type("RelatedPerson"))
    if minor and not guardians and every_one_valid:
        ctx.fail(
            "business-rule",
            f"{patient.loc}.birthDate",
            f"a person under {AGE_OF_MAJORITY} is examined with a parent or guardian: add a "
            "RelatedPerson (dependant-relationship FTH, MTH, PRN or GUARD)",
        )
    return related


def _related_person(
    ctx: CheckContext,
    index: BundleIndex,
    entry: Entry,
    patient: Entry,
    examination_date: datetime.date | None,
) -> RelatedPersonData | None:
    resource: models.RelatedPerson = entry.resource
    loc = entry.loc
    target = index.target(entry, resource.patient, "patient", "Patient", required=True)
    ok = True
    if target is not None and target.index != patient.index:
        ctx.fail("invalid", f"{loc}.patient", "the RelatedPerson must name the examined person")
        ok = False
    codes = ctx.codes_in(resource.relationship or [], DEPENDANT_RELATIONSHIP_VS)
    if len(codes) != 1:
        problem = "one relationship from dependant-relationship (FTH, MTH, PRN, GUARD, SPS)"
        ctx.fail("code-invalid", f"{loc}.relationship", f"the RelatedPerson needs {problem}")
        ok = False
    if not resource.name:
        ctx.fail("required", f"{loc}.name", "the worker's name is required")
        ok = False
    names = _names(ctx, resource.name or [], loc) if resource.name else None
    birth_date = _birth_date(ctx, resource.birthDate, f"{loc}.birthDate", examination_date)
    documents = _documents(ctx, resource.identifier or [], loc, examination_date)
    sex = resource.gender if resource.gender in ADMINISTRATIVE_GENDER else "unknown"
    if resource.gender is not None and resource.gender not in ADMINISTRATIVE_GENDER:
        _check_gender(ctx, resource.gender, f"{loc}.gender")
        ok = False
    if not ok or names is None or birth_date is None or documents is None:
        return None
    families, givens, patronymic, display = names
    return RelatedPersonData(
        relationship=codes[0],
        dependant_role=DEPENDANT_ROLES[codes[0]],
        person=PersonData(
            family_names=families,
            given_names=givens,
            patronymic=patronymic,
            sex=str(sex),
            birth_date=birth_date,
            citizenship=None,
            documents=documents,
            photo=None,
            display_name=display,
        ),
    )


def display_name(names: Sequence[models.HumanName]) -> str | None:
    """'Given Family' from the first Latin-script name, else from the first name."""
    candidates = [
        (" ".join(g.strip() for g in name.given or [] if g and g.strip()), family)
        for name in names
        if (family := (name.family or "").strip())
    ]
    if not candidates:
        return None
    latin = [c for c in candidates if is_latin(c[1] + c[0])]
    given, family = (latin or candidates)[0]
    return f"{given} {family}".strip()


def is_latin(text: str) -> bool:
    """Whether every letter of text is from the Latin script."""
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and all(unicodedata.name(ch, "").startswith("LATIN") for ch in letters)


def _check_gender(ctx: CheckContext, gender: str | None, loc: str) -> bool:
    if gender is None:
        ctx.fail("required", loc, "Patient.gender is required")
        return False
    if gender not in ADMINISTRATIVE_GENDER:
        allowed = ", ".join(sorted(ADMINISTRATIVE_GENDER))
        ctx.fail(
            "code-invalid",
            loc,
            f"gender {quoted(gender)} is not in administrative-gender ({allowed})",
        )
        return False
    return True


def _birth_date(
    ctx: CheckContext, value: object, loc: str, examination_date: datetime.date | None
) -> datetime.date | None:
    if value is None:
        ctx.fail("required", loc, "Patient.birthDate is required")
        return None
    if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
        ctx.fail("value", loc, "Patient.birthDate must be a full date (YYYY-MM-DD)")
        return None
    if value > ctx.today:
        ctx.fail("invariant", loc, "the birth date is in the future")
        return None
    if examination_date is None:
        return value
    if value >= examination_date:
        ctx.fail("invariant", loc, "the birth date must be before the examination date")
        return None
    age = _age(value, examination_date)
    if age > MAX_AGE_YEARS:
        ctx.fail("value", loc, f"implausible age {age} at the examination (0 to {MAX_AGE_YEARS})")
        return None
    return value


def _names(
    ctx: CheckContext, names: Sequence[models.HumanName], loc: str
) -> tuple[list[str], list[str], str | None, str] | None:
    if not names:
        ctx.fail("required", f"{loc}.name", "Patient.name is required")
        return None
    ok = True
    families: list[str] = []
    givens: list[str] = []
    patronymics: list[str] = []
    if len(names) > MAX_NAMES:
        ctx.fail("too-long", f"{loc}.name", f"a person has at most {MAX_NAMES} names")
        return None
    for index, name in enumerate(names):
        name_loc = f"{loc}.name[{index}]"
        family = (name.family or "").strip()
        given = [g.strip() for g in name.given or [] if g and g.strip()]
        if len(name.given or []) > MAX_GIVEN_NAMES:
            ctx.fail("too-long", f"{name_loc}.given", f"at most {MAX_GIVEN_NAMES} given names")
            ok = False
        parts = [(f"{name_loc}.family", family)]
        parts += [(f"{name_loc}.given[{i}]", g) for i, g in enumerate(given)]
        parts += [
            (f"{name_loc}.extension[{i}].valueString", e.valueString or "")
            for i, e in enumerate(name.extension or [])
            if e.url == PATRONYMIC_URL
        ]
        for where, part in parts:
            if len(part.strip()) > MAX_NAME_CHARACTERS:
                ctx.fail(
                    "too-long", where, f"a name part has at most {MAX_NAME_CHARACTERS} characters"
                )
                ok = False
        if not family:
            ctx.fail("required", f"{name_loc}.family", "every name needs a family name")
            ok = False
        if not given:
            ctx.fail("required", f"{name_loc}.given", "every name needs a given name")
            ok = False
        if family and family not in families:
            families.append(family)
        givens.extend(g for g in given if g not in givens)
        for ext_index, extension in enumerate(name.extension or []):
            if extension.url != PATRONYMIC_URL:
                continue
            text = (extension.valueString or "").strip()
            if not text:
                where = f"{name_loc}.extension[{ext_index}].valueString"
                ctx.fail("value", where, "the patronymic extension needs a valueString")
                ok = False
            elif text not in patronymics:
                patronymics.append(text)
    display = display_name(names)
    if not ok or display is None:
        return None
    patronymics.sort(key=_latin_first)
    return (
        sorted(families, key=_latin_first),
        sorted(givens, key=_latin_first),
        patronymics[0] if patronymics else None,
        display,
    )


def _documents(
    ctx: CheckContext,
    identifiers: Sequence[models.Identifier],
    loc: str,
    examination_date: datetime.date | None,
) -> list[DocumentData] | None:
    documents: list[DocumentData] = []
    ok = True
    for index, identifier in enumerate(identifiers):
        id_loc = f"{loc}.identifier[{index}]"
        system = identifier.system or ""
        doc_types = ctx.codes_in([identifier.type], IDENTITY_DOCUMENT_TYPE_VS)
        if not system.startswith(DOCUMENT_SYSTEM_PREFIX) and not doc_types:
            continue  # another kind of identifier (e.g. a national health number)
        country = system.removeprefix(DOCUMENT_SYSTEM_PREFIX)
        number = (identifier.value or "").strip()
        document_ok = True
        if len(doc_types) != 1:
            ctx.fail(
                "code-invalid", f"{id_loc}.type", "a document needs one identity-document-type"
            )
            document_ok = False
        if not system.startswith(DOCUMENT_SYSTEM_PREFIX) or not ctx.terms.is_country(country):
            problem = f"document system must be {DOCUMENT_SYSTEM_PREFIX}<issuing country>"
            ctx.fail("value", f"{id_loc}.system", problem)
            document_ok = False
        if not number:
            ctx.fail("required", f"{id_loc}.value", "the document number is required")
            document_ok = False
        end = identifier.period.end if identifier.period is not None else None
        expiry = as_date(end)
        if end is not None and expiry is None:
            ctx.fail("value", f"{id_loc}.period.end", "the document expiry must be a full date")
            document_ok = False
        elif expiry is not None and examination_date is not None and expiry < examination_date:
            problem = "the identity document had expired before the examination"
            ctx.fail("business-rule", f"{id_loc}.period.end", problem)
            document_ok = False
        if document_ok:
            documents.append(DocumentData(doc_types[0], country, number, expiry))
        ok = ok and document_ok
    if ok and not documents:
        ctx.fail("required", f"{loc}.identifier", "the person needs at least one identity document")
        return None
    return documents if ok else None


def _citizenship(ctx: CheckContext, extensions: Sequence[models.Extension], loc: str) -> str | None:
    for index, extension in enumerate(extensions):
        if extension.url != CITIZENSHIP_URL:
            continue
        codes = [
            coding.code
            for part in extension.extension or []
            if part.url == "code" and part.valueCodeableConcept is not None
            for coding in part.valueCodeableConcept.coding or []
            if coding.system == ISO_3166
        ]
        if len(codes) != 1 or not ctx.terms.is_country(codes[0]):
            problem = "citizenship needs one ISO 3166-1 alpha-2 code (urn:iso:std:iso:3166)"
            ctx.fail("code-invalid", f"{loc}.extension[{index}]", problem)
            return None
        return codes[0]
    return None


def _photo(ctx: CheckContext, photos: Sequence[models.Attachment], loc: str) -> PhotoData | None:
    if not photos:
        return None
    if len(photos) > 1:
        ctx.fail("invariant", f"{loc}.photo[1]", "at most one photo")
    photo = photos[0]
    content_type = photo.contentType or ""
    data = photo.data
    if content_type not in PHOTO_TYPES:
        ctx.fail(
            "value", f"{loc}.photo[0].contentType", "the photo must be image/jpeg or image/png"
        )
        return None
    if not isinstance(data, bytes) or not data:
        ctx.fail("required", f"{loc}.photo[0].data", "the photo data (base64) is required")
        return None
    if len(data) > PHOTO_MAX_BYTES:
        ctx.fail(
            "too-long", f"{loc}.photo[0].data", f"the photo exceeds {PHOTO_MAX_BYTES // 1024} KiB"
        )
        return None
    return PhotoData(content_type=content_type, data=data)


def _latin_first(value: str) -> bool:
    # sorted() is stable, so this keeps the submitted order within each script.
    return not is_latin(value)


def _age(birth: datetime.date, on: datetime.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
