"""Downloads: QR, card file and printable PDF for the issuing clinic or the holder's secret."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.certificates import holders, shc
from registry.certificates.holders import recovery_code
from registry.certificates.models import Certificate
from tests.certificates.builders import (
    certified,
    holder_secret,
    load_rulesets,
    submit,
)
from tests.support import World

DOWNLOADS = {
    "qr.svg": "image/svg+xml",
    "qr.png": "image/png",
    "card.smart-health-card": "application/smart-health-card",
    "certificate.pdf": "application/pdf",
}


@pytest.fixture(autouse=True)
def _published(world: World) -> None:
    load_rulesets(world.app)
    world.clinic("TJ-DUS-0007")
    world.clinic("KG-BIS-0001")


@pytest.fixture
def kz(world: World) -> Certificate:
    return certified(submit(world))["KZ"]


def _text(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "certificate.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def _check(name: str, content: bytes, certificate: Certificate, world: World) -> None:
    if name == "qr.svg":
        assert content.startswith(b"<svg") and b"<?xml" not in content
    elif name == "qr.png":
        assert content.startswith(b"\x89PNG\r\n\x1a\n")
    elif name == "card.smart-health-card":
        (token,) = shc.read_health_card_file(content)
        assert shc.read_certificate(shc.decode_card(token)[1]).certificate_id == certificate.id
    else:
        assert content.startswith(b"%PDF-")


@pytest.mark.parametrize("name", list(DOWNLOADS))
def test_the_issuing_clinic_downloads_every_form(world: World, kz: Certificate, name: str) -> None:
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    response = world.http.get(f"/api/v1/certificates/{kz.id}/{name}", headers=headers)
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == DOWNLOADS[name]
    assert response.headers["Cache-Control"] == "no-store"
    _check(name, response.data, kz, world)


@pytest.mark.parametrize("name", list(DOWNLOADS))
def test_the_holder_downloads_every_form_with_the_secret_alone(
    world: World, kz: Certificate, name: str
) -> None:
    secret = holder_secret(world, kz)
    response = world.http.get(f"/api/v1/certificates/{kz.id}/{name}?h={secret}")
    assert response.status_code == 200, response.data[:300]
    _check(name, response.data, kz, world)
    with world.ctx.db.read_session() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "certificate.download")
        ).one()
    assert (event.actor, event.role, event.object_id) == ("holder", "holder", kz.id)
    assert secret not in json.dumps(event.detail)


@pytest.mark.parametrize("name", list(DOWNLOADS))
def test_nobody_else_downloads(world: World, kz: Certificate, name: str) -> None:
    path = f"/api/v1/certificates/{kz.id}/{name}"
    assert world.http.get(path).status_code == 401
    assert world.http.get(f"{path}?h=not-the-secret").status_code == 403
    other_clinic = world.bearer("clinic", clinic_id="KG-BIS-0001")
    assert world.http.get(path, headers=other_clinic).status_code == 403
    assert world.http.get(path, headers=world.bearer("employer")).status_code == 403
    # the operator manages the registry; printing a holder's papers is for clinic and holder
    assert world.http.get(path, headers=world.bearer("admin")).status_code == 403
    unknown = f"/api/v1/certificates/KZ-2222-2222/{name}"
    assert world.http.get(unknown, headers=world.bearer("admin")).status_code == 404
    with world.ctx.db.read_session() as session:
        downloads = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "certificate.download")
        ).all()
    assert downloads == []


def test_a_secret_opens_only_the_certificates_of_its_examination(world: World) -> None:
    first = certified(submit(world))
    second = certified(submit(world, number="2026-000002"))
    secret = holder_secret(world, first["KZ"])
    response = world.http.get(f"/api/v1/certificates/{second['KZ'].id}/qr.svg?h={secret}")
    assert response.status_code == 403
    with world.ctx.db.read_session() as session:
        opened = holders.certificates_for_holder(session, secret)
    assert sorted(c.id for c in opened) == sorted(c.id for c in first.values())


def test_the_certificate_status_is_shown_without_any_result(world: World, kz: Certificate) -> None:
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    shown = world.http.get(f"/api/v1/certificates/{kz.id}", headers=headers).json
    assert shown == {
        "id": kz.id,
        "status": "valid",
        "status_reason": None,
        "destination": "KZ",
        "purpose": "pre-departure",
        "valid_from": kz.valid_from.isoformat(),
        "valid_until": kz.valid_until.isoformat(),
        "issued_at": kz.issued_at.isoformat(),
        "revoked_at": None,
        "revocation_reason": None,
        "clinic": {"id": "TJ-DUS-0007", "name": "Clinic TJ-DUS-0007", "country": "TJ"},
        "log": {"leaf_hash": shown["log"]["leaf_hash"], "leaf_index": None},
    }
    assert len(bytes.fromhex(shown["log"]["leaf_hash"])) == 32  # sequenced within seconds
    by_holder = world.http.get(f"/api/v1/certificates/{kz.id}?h={holder_secret(world, kz)}")
    assert by_holder.json == shown
    # typed in lower case, it is still found
    typed = kz.id.lower()
    assert world.http.get(f"/api/v1/certificates/{typed}", headers=headers).status_code == 200
    assert world.http.get(f"/api/v1/certificates/{kz.id}").status_code == 401
    other = world.bearer("clinic", clinic_id="KG-BIS-0001")
    assert world.http.get(f"/api/v1/certificates/{kz.id}", headers=other).status_code == 403
    with world.ctx.db.read_session() as session:
        reads = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "certificate.read")
        ).all()
    assert len(reads) == 3


def test_the_pdf_is_in_the_holders_language_and_russian(
    world: World, kz: Certificate, tmp_path: Path
) -> None:
    secret = holder_secret(world, kz)
    response = world.http.get(f"/api/v1/certificates/{kz.id}/certificate.pdf?h={secret}")
    text = _text(response.data, tmp_path)
    assert kz.id in text
    # a Tajik citizen: Tajik first, Russian beside it
    assert "Шаҳодатнома дар бораи" in text and "Рақами шаҳодатнома" in text
    assert "Сертификат о медицинском" in text and "Номер сертификата" in text
    assert "KARIMOV Rustam Saidovich" in text and "14.03.1991" in text
    assert kz.valid_until.strftime("%d.%m.%Y") in text
    # the certificate is shown to employers: no holder link, no recovery code on it
    assert f"/h/{secret}" not in text.replace("\n", "").replace(" ", "")
    assert "/h/" not in text.replace("\n", "").replace(" ", "")
    assert recovery_code(world.ctx.keystore, examination_id=kz.examination_id) not in text
    for word in ("HIV", "ВИЧ", "X-ray", "negative", "отрицат"):
        assert word not in text

    uzbek = world.http.get(f"/api/v1/certificates/{kz.id}/certificate.pdf?h={secret}&lang=uz")
    assert "Sertifikat raqami" in _text(uzbek.data, tmp_path)
    bad = world.http.get(f"/api/v1/certificates/{kz.id}/certificate.pdf?h={secret}&lang=xx")
    assert bad.status_code == 422


def test_a_printed_certificate_can_be_looked_at(
    world: World, kz: Certificate, tmp_path: Path
) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    pdf = world.http.get(f"/api/v1/certificates/{kz.id}/certificate.pdf", headers=headers).data
    (tmp_path / "certificate.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "70", str(tmp_path / "certificate.pdf"), str(tmp_path / "page")],
        check=True,
    )
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == 1 and pages[0].read_bytes().startswith(b"\x89PNG")


def test_a_revoked_certificate_is_no_longer_printed(world: World, kz: Certificate) -> None:
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    world.http.post(
        f"/api/v1/certificates/{kz.id}/revoke", json={"reason": "issued in error"}, headers=headers
    )
    response = world.http.get(f"/api/v1/certificates/{kz.id}/qr.png", headers=headers)
    assert response.status_code == 409
    shown = world.http.get(f"/api/v1/certificates/{kz.id}", headers=headers).json
    assert (shown["status"], shown["status_reason"]) == ("revoked", "issued in error")


def test_the_holder_slip_alone_carries_the_link_and_the_recovery_code(
    world: World, kz: Certificate, tmp_path: Path
) -> None:
    secret = holder_secret(world, kz)
    code = recovery_code(world.ctx.keystore, examination_id=kz.examination_id)
    assert len(code) == 9 and code[4] == "-"
    response = world.http.get(f"/api/v1/certificates/{kz.id}/holder-slip.pdf?h={secret}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    text = _text(response.data, tmp_path)
    flat = text.replace("\n", "").replace(" ", "")
    assert f"/h/{secret}" in flat
    assert code in text
    # Tajik first, Russian beside it; marked for the holder alone
    assert "Инро нигоҳ доред" in text and "Не показывайте работодателю" in text
    assert kz.id in text and "KARIMOV Rustam Saidovich" in text
    for word in ("HIV", "ВИЧ", "X-ray", "negative", "отрицат"):
        assert word not in text
    # the clinic prints it with its token too; a stranger gets nothing
    clinic = world.http.get(
        f"/api/v1/certificates/{kz.id}/holder-slip.pdf",
        headers=world.bearer("clinic", clinic_id="TJ-DUS-0007"),
    )
    assert clinic.status_code == 200
    assert world.http.get(f"/api/v1/certificates/{kz.id}/holder-slip.pdf").status_code == 401
