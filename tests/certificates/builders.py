"""Examinations with certificates for the certificate tests, through the submission service."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from flask import Flask

from registry.auth.principal import ROLE_SCOPES, Principal
from registry.certificates import service as certificates
from registry.certificates.models import Certificate
from registry.examinations import service as examinations
from registry.fhir.person import PATRONYMIC_URL
from tests.bundles import EXAMPLES, body, examination_bundle
from tests.support import World

PROFILES_DIR = Path(__file__).resolve().parents[2] / "fhir_profiles"
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def load_rulesets(app: Flask) -> list[str]:
    """Publish the shipped rulesets in the app's database (a no-op once they are there)."""
    ctx = app.extensions["registry"]
    with ctx.db.unit_of_work() as uow:
        added = certificates.sync_rulesets(uow, profiles_dir=PROFILES_DIR)
        uow.commit()
    return added


def clinic_principal(clinic_id: str) -> Principal:
    """A clinic's API client as the services see it."""
    return Principal(
        client_id=f"client-{clinic_id}",
        role="clinic",
        name=f"{clinic_id} system",
        scopes=ROLE_SCOPES["clinic"],
        clinic_id=clinic_id,
        country=clinic_id[:2],
    )


def _walk(value: Any, key: str | None = None) -> Iterator[tuple[str | None, Any, Any, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v, value, k
            yield from _walk(v, k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield key, v, value, i
            yield from _walk(v, key)


def redated(bundle: dict[str, Any], examined_on: date) -> dict[str, Any]:
    """The bundle with every date but the birth date moved so the examination is on a day."""
    dated = [
        (holder, slot, value)
        for key, value, holder, slot in _walk(bundle)
        if isinstance(value, str) and key != "birthDate" and _DATE.match(value)
    ]
    first = min(
        date.fromisoformat(value[:10])
        for _holder, slot, value in dated
        if slot in ("effectiveDateTime", "dateTime")
    )
    shift = examined_on - first
    for holder, slot, value in dated:
        moved = date.fromisoformat(value[:10]) + shift
        holder[slot] = moved.isoformat() + value[10:]
    return bundle


def example(name: str, *, examined_on: date | None = None, number: str | None = None) -> dict:
    """A valid example bundle re-dated to a recent examination, standing on its own."""
    bundle: dict[str, Any] = json.loads((EXAMPLES / name).read_text("utf-8"))
    redated(bundle, examined_on or datetime.now(UTC).date() - timedelta(days=7))
    composition = bundle["entry"][0]["resource"]
    composition["extension"] = [
        e for e in composition.get("extension", []) if "previous-examination" not in e["url"]
    ]
    if number:
        bundle["identifier"]["value"] = number
    return bundle


def with_name(
    bundle: dict[str, Any], *, family: str, given: list[str], patronymic: str | None = None
) -> dict[str, Any]:
    """The bundle with the person's only name replaced."""
    name: dict[str, Any] = {"use": "official", "family": family, "given": given}
    if patronymic:
        name["extension"] = [{"url": PATRONYMIC_URL, "valueString": patronymic}]
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["name"] = [name]
    return bundle


def submit(
    world: World,
    bundle: dict[str, Any] | None = None,
    *,
    clinic_id: str = "TJ-DUS-0007",
    now: datetime | None = None,
    **bundle_arguments: Any,
) -> examinations.Submission:
    """Submit an examination as its clinic would, certificates issued in the same transaction."""
    ctx = world.ctx
    principal = clinic_principal(clinic_id)
    now = now or datetime.now(UTC)
    bundle = bundle or examination_bundle(clinic_id=clinic_id, **bundle_arguments)
    with ctx.db.unit_of_work() as uow:
        submission = examinations.submit(
            uow,
            principal=principal,
            bundle_json=body(bundle),
            now=now,
        )
        uow.commit()
    return submission


def amend(
    world: World, examination_id: str, bundle: dict[str, Any], *, clinic_id: str = "TJ-DUS-0007"
) -> examinations.Submission:
    """Amend an examination: its certificates superseded, new ones for the new version."""
    ctx = world.ctx
    principal = clinic_principal(clinic_id)
    now = datetime.now(UTC)
    with ctx.db.unit_of_work() as uow:
        submission = examinations.amend(
            uow,
            principal=principal,
            examination_id=examination_id,
            bundle_json=body(bundle),
            now=now,
        )
        uow.commit()
    return submission


def withdraw(
    world: World, examination_id: str, *, clinic_id: str = "TJ-DUS-0007"
) -> examinations.Submission:
    """Withdraw an examination as entered in error: its certificates revoked."""
    ctx = world.ctx
    principal = clinic_principal(clinic_id)
    now = datetime.now(UTC)
    with ctx.db.unit_of_work() as uow:
        submission = examinations.withdraw(
            uow,
            principal=principal,
            examination_id=examination_id,
            reason="wrong person examined",
            now=now,
        )
        uow.commit()
    return submission


def certified(submission: examinations.Submission) -> dict[str, Certificate]:
    """The certificates a submission produced, by destination."""
    return {a.destination: a.certificate for a in submission.assessments if a.certificate}


def stored(world: World, certificate_id: str) -> Certificate:
    """A certificate as stored now."""
    with world.ctx.db.read_session() as session:
        certificate = session.get(Certificate, certificate_id)
        assert certificate is not None
        return certificate


def holder_secret(world: World, certificate: Certificate) -> str:
    """The secret printed on a certificate's holder link."""
    from registry.certificates.holders import holder_secret as derive

    return derive(world.ctx.keystore, examination_id=certificate.examination_id)


# The permission matrix names its certificate in the path, so its id is fixed.
MATRIX_CERTIFICATE = "KZ-MATR-X239"


def matrix_certificate(world: World) -> Certificate:
    """A valid KZ certificate of clinic TJ-DUS-0007 with the id MATRIX_CERTIFICATE."""
    load_rulesets(world.app)
    fixed = {"KZ": MATRIX_CERTIFICATE, "RU": "RU-MATR-X239", "TM": "TM-MATR-X239"}
    with mock.patch.object(certificates, "new_certificate_id", side_effect=fixed.__getitem__):
        submission = submit(world, number="MATRIX-CERTIFICATE")
    return certified(submission)["KZ"]
