"""Certificates, cards and issuers for the verification tests."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from registry.certificates import shc
from registry.certificates.models import Certificate
from registry.certificates.service import certificate_card
from registry.crypto.keys import PrivateKey, generate_key, public_jwk, thumbprint
from registry.verification import issuers
from tests.certificates.builders import certified, load_rulesets, submit
from tests.support import OPERATOR, World

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SHC_EXAMPLES = SHARED / "testdata" / "shc-spec-examples"
SPEC_ISSUER = "https://spec.smarthealth.cards/examples/issuer"
PARTNER_ISSUER = "https://cards.partner.test"
BIRTH_DATE = "1991-03-14"  # of the example bundle's person
# Words that would mean a medical result had reached a verifier.
MEDICAL_WORDS = ("hiv", "tubercul", "syphilis", "positive", "negative", "xray", "x-ray", "loinc")


def publish(world: World, *clinics: str) -> None:
    """Publish the rulesets and accredit the clinics (default TJ-DUS-0007)."""
    load_rulesets(world.app)
    for clinic_id in clinics or ("TJ-DUS-0007",):
        world.clinic(clinic_id)


def publish_and_hold_keys(world: World, monkeypatch: Any) -> World:
    """``publish``, then the key statuses read once and held: a worker reads them again every
    few seconds, one query that per-request statement counts are not about
    (tests/crypto/test_key_refresh.py counts it)."""
    publish(world)
    world.ctx.keystore.refresh()
    monkeypatch.setattr(world.ctx.keystore, "refresh_seconds", 3600)
    return world


def certificate(world: World, destination: str = "KZ", **arguments: Any) -> Certificate:
    """A certificate of a freshly submitted examination (submission arguments pass through)."""
    submission = submit(world, **arguments)
    return certified(submission)[destination]


def card_of(world: World, issued: Certificate) -> str:
    """The certificate's current card (compact JWS)."""
    return certificate_card(issued, cipher=world.ctx.cipher)


def qr_of(world: World, issued: Certificate) -> str:
    """The text of the certificate's QR code."""
    return shc.qr_payload(card_of(world, issued))


def verify(world: World, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """POST /api/v1/verify; asserts 200 and returns the answer."""
    response = world.http.post("/api/v1/verify", json=body, headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.json
    assert isinstance(answer, dict)
    return answer


def partner_key() -> tuple[PrivateKey, str]:
    """A signing key of another SMART Health Card issuer."""
    key = generate_key()
    return key, thumbprint(public_jwk(key))


def partner_jwks(key: PrivateKey) -> dict[str, Any]:
    """The published JWKS of that issuer."""
    jwk = public_jwk(key)
    return {"keys": [{**jwk, "kid": thumbprint(jwk), "use": "sig", "alg": "ES256"}]}


def register_issuer(
    world: World,
    iss: str,
    jwks: dict[str, Any],
    crls: list[dict[str, Any]] | None = None,
) -> None:
    """Register another issuer as the operator would."""
    with world.ctx.db.unit_of_work() as uow:
        issuers.add_issuer(
            uow,
            principal=OPERATOR,
            iss=iss,
            jwks=jwks,
            crls=crls or [],
            name="Partner issuing system",
            settings=world.ctx.settings,
        )
        uow.commit()


def other_card_payload(iss: str, *, nbf: datetime, exp: datetime | None = None) -> dict[str, Any]:
    """A minimal SMART Health Card of another kind (an immunization card), as another issuer."""
    payload: dict[str, Any] = {
        "iss": iss,
        "nbf": int(nbf.timestamp()),
        "vc": {
            "type": ["https://smarthealth.cards#health-card"],
            "credentialSubject": {
                "fhirVersion": "4.0.1",
                "fhirBundle": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [
                        {
                            "fullUrl": "resource:0",
                            "resource": {
                                "resourceType": "Patient",
                                "name": [{"family": "Doe", "given": ["Jane"]}],
                                "birthDate": "1980-01-01",
                            },
                        }
                    ],
                },
            },
            "rid": "AAAAAAAAAAA",
        },
    }
    if exp is not None:
        payload["exp"] = int(exp.timestamp())
    return payload


def examination_card_payload(iss: str, **changes: Any) -> dict[str, Any]:
    """An examination certificate card as this registry would write it, for another issuer."""
    today = datetime.now(UTC).date()
    arguments: dict[str, Any] = {
        "issuer": iss,
        "certificate_id": "KZ-7F3K-9QPX",
        "family_name": "Karimov",
        "given_names": ("Rustam",),
        "birth_date": date(1991, 3, 14),
        "destination": "KZ",
        "purpose": "pre-departure",
        "clinic_id": "TJ-DUS-0007",
        "clinic_name": "Clinic TJ-DUS-0007",
        "issued_at": datetime.now(UTC) - timedelta(days=1),
        "valid_from": today - timedelta(days=2),
        "valid_until": today + timedelta(days=80),
        "rid": "MKyCxh7p6uQ",
    }
    arguments.update(changes)
    return shc.build_payload(**arguments)


def sign_card(payload: dict[str, Any], key: PrivateKey) -> str:
    """A card signed by ``key`` (kid its thumbprint)."""
    return shc.encode_card(payload, key, thumbprint(public_jwk(key)))


def example(number: str, suffix: str) -> str:
    """One of the SMART Health Cards specification's example files, as text."""
    return (SHC_EXAMPLES / f"example-{number}-{suffix}").read_text("utf-8").strip()


def spec_issuer_files() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The specification's example issuer: its JWKS and its revocation lists."""
    folder = SHC_EXAMPLES / "issuer" / ".well-known"
    jwks = json.loads((folder / "jwks.json").read_text("utf-8"))
    crls = [json.loads(p.read_text("utf-8")) for p in sorted((folder / "crl").glob("*.json"))]
    return jwks, crls


def tampered(token: str) -> str:
    """The card with one signature character changed."""
    header, payload, signature = token.split(".")
    flipped = "A" if signature[10] != "A" else "B"
    return f"{header}.{payload}.{signature[:10]}{flipped}{signature[11:]}"


def portrait_png() -> str:
    """A small generated portrait (base64 PNG), so the photo on the page looks like one."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (150, 200), (214, 226, 236))
    draw = ImageDraw.Draw(image)
    draw.ellipse((45, 30, 105, 100), fill=(182, 140, 110))
    draw.rectangle((35, 110, 115, 200), fill=(60, 80, 120))
    draw.ellipse((30, 100, 120, 150), fill=(60, 80, 120))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def with_portrait(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle with a portrait-like photo of the person."""
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["photo"] = [{"contentType": "image/png", "data": portrait_png()}]
    return bundle


def revoke(world: World, certificate_id: str, clinic_id: str = "TJ-DUS-0007") -> None:
    """Revoke a certificate as its clinic does."""
    from registry.certificates.service import revoke as revoke_certificate
    from tests.certificates.builders import clinic_principal

    with world.ctx.db.unit_of_work() as uow:
        revoke_certificate(
            uow,
            principal=clinic_principal(clinic_id),
            certificate_id=certificate_id,
            reason="issued to the wrong person",
            now=datetime.now(UTC),
        )
        uow.commit()


def suspend(world: World, clinic_id: str, *, at: datetime | None = None) -> None:
    """Suspend a clinic's accreditation as its accreditor does."""
    from registry.accreditation.service import change_clinic_status

    with world.ctx.db.unit_of_work() as uow:
        change_clinic_status(
            uow,
            principal=OPERATOR,
            clinic_id=clinic_id,
            status="suspended",
            reason="inspection found sold results",
            effective_at=at,
        )
        uow.commit()


def scenarios(world: World) -> dict[str, dict[str, str]]:
    """For every result code, what a verifier presents to get it (form fields)."""
    from tests.bundles import examination_bundle
    from tests.certificates.builders import amend

    now = datetime.now(UTC)
    today = now.date()
    publish(world, "TJ-DUS-0007", "KG-BIS-0001")
    valid = certificate(world, bundle=with_portrait(examination_bundle(number="S-VALID")))
    expired = certificate(
        world,
        number="S-EXPIRED",
        examined_on=today - timedelta(days=200),
        now=now - timedelta(days=197),
    )
    not_yet_valid = certificate(world, number="S-FUTURE", now=now + timedelta(days=2))
    revoked = certificate(world, number="S-REVOKED")
    revoke(world, revoked.id)
    superseded = certificate(world, number="S-AMENDED")
    amend(
        world,
        superseded.examination_id,
        examination_bundle(number="S-AMENDED", outcomes={"hbsag": "positive"}),
    )
    suspended = certificate(world, clinic_id="KG-BIS-0001", number="S-SUSPENDED")
    suspend(world, "KG-BIS-0001")
    stranger, _kid = partner_key()
    untrusted = sign_card(examination_card_payload(PARTNER_ISSUER), stranger)
    return {
        "valid": {"qr": qr_of(world, valid)},
        "valid_for_other_destination": {"qr": qr_of(world, valid), "for_destination": "RU"},
        "expired": {"qr": qr_of(world, expired)},
        "not_yet_valid": {"qr": qr_of(world, not_yet_valid)},
        "revoked": {"qr": qr_of(world, revoked)},
        "superseded": {"qr": qr_of(world, superseded)},
        "invalid_signature": {"qr": shc.qr_payload(tampered(card_of(world, valid)))},
        "untrusted_issuer": {"qr": shc.qr_payload(untrusted)},
        "issuer_suspended": {"qr": qr_of(world, suspended)},
        "not_found": {"certificate_id": valid.id, "birth_date": "1990-01-01"},
        "malformed": {"qr": "shc:/5676295953265460346029254077280433602870286471674522280928"},
    }
