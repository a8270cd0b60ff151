"""Every role against every endpoint: 401 without a token, 403 for the wrong caller, 2xx otherwise.

Each later capability adds its endpoints to ENDPOINTS; the matrix grows with the product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from registry.crypto.keys import generate_key, public_jwk
from tests.support import World

# caller name -> how to make the caller (role, keyword arguments of World.api_client)
CALLERS: dict[str, tuple[str, dict[str, str]] | None] = {
    "anonymous": None,
    "clinic TJ-DUS-0007": ("clinic", {"clinic_id": "TJ-DUS-0007"}),
    "clinic KG-BIS-0001": ("clinic", {"clinic_id": "KG-BIS-0001"}),
    "employer": ("employer", {}),
    "authority KZ": ("authority", {"country": "KZ"}),
    "ministry TJ": ("ministry", {"country": "TJ"}),
    "accreditor TJ": ("accreditor", {"country": "TJ"}),
    "accreditor KG": ("accreditor", {"country": "KG"}),
    "admin": ("admin", {}),
}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    allowed: frozenset[str]  # callers that succeed; everyone else gets 401 (anonymous) or 403
    body: Callable[[World], dict[str, Any]] | None = None
    public: bool = False  # anonymous callers succeed too
    extra: dict[str, Any] = field(default_factory=dict)
    # callers whose request is authorised but answered otherwise (e.g. 404 for another
    # clinic's examination, 422 for a bundle naming another clinic)
    expected: dict[str, int] = field(default_factory=dict)
    raw_body: Callable[[World], bytes] | None = None


def _new_clinic(_: World) -> dict[str, Any]:
    return {
        "id": "TJ-KHU-0003",
        "name": "Khujand clinic",
        "country": "TJ",
        "purposes": ["pre-departure"],
        "accredited_from": "2026-01-01",
    }


def _key_status(world: World) -> dict[str, Any]:
    return {"status": "retired", "reason": "rotation"}


ENDPOINTS = [
    Endpoint("list clinics", "GET", "/api/v1/clinics", frozenset(CALLERS), public=True),
    Endpoint("read clinic", "GET", "/api/v1/clinics/TJ-DUS-0007", frozenset(CALLERS), public=True),
    Endpoint(
        "accredit clinic",
        "POST",
        "/api/v1/clinics",
        frozenset({"accreditor TJ", "admin"}),
        _new_clinic,
    ),
    Endpoint(
        "suspend clinic",
        "POST",
        "/api/v1/clinics/TJ-DUS-0007/status",
        frozenset({"accreditor TJ", "admin"}),
        lambda _: {"status": "suspended", "reason": "inspection"},
    ),
    Endpoint(
        "register clinic key",
        "POST",
        "/api/v1/clinics/TJ-DUS-0007/keys",
        frozenset({"accreditor TJ", "admin"}),
        lambda _: {"jwk": public_jwk(generate_key())},
    ),
    Endpoint(
        "retire clinic key",
        "POST",
        "/api/v1/clinics/TJ-DUS-0007/keys/{kid}/status",
        frozenset({"accreditor TJ", "admin"}),
        _key_status,
    ),
    Endpoint(
        "create clinic API client",
        "POST",
        "/api/v1/clinics/TJ-DUS-0007/clients",
        frozenset({"accreditor TJ", "admin"}),
        lambda _: {"jwk": public_jwk(generate_key())},
    ),
]


def _bundle(_: World) -> bytes:
    from tests.bundles import body, examination_bundle

    return body(examination_bundle(number="MATRIX-2"))


def _amended_bundle(_: World) -> bytes:
    from tests.bundles import body, examination_bundle

    return body(examination_bundle(number="MATRIX-1", outcomes={"igra": "positive"}))


ENDPOINTS += [
    Endpoint(
        "submit examination",
        "POST",
        "/api/v1/examinations",
        frozenset({"clinic TJ-DUS-0007"}),
        raw_body=_bundle,
        expected={"clinic KG-BIS-0001": 422},
    ),
    Endpoint(
        "list own examinations",
        "GET",
        "/api/v1/examinations",
        frozenset({"clinic TJ-DUS-0007", "clinic KG-BIS-0001"}),
    ),
    Endpoint(
        "read examination",
        "GET",
        "/api/v1/examinations/{examination}",
        frozenset({"clinic TJ-DUS-0007"}),
        expected={"clinic KG-BIS-0001": 404},
    ),
    Endpoint(
        "amend examination",
        "PUT",
        "/api/v1/examinations/{examination}",
        frozenset({"clinic TJ-DUS-0007"}),
        raw_body=_amended_bundle,
        expected={"clinic KG-BIS-0001": 404},
    ),
    Endpoint(
        "withdraw examination",
        "POST",
        "/api/v1/examinations/{examination}/withdraw",
        frozenset({"clinic TJ-DUS-0007"}),
        lambda _: {"reason": "wrong person"},
        expected={"clinic KG-BIS-0001": 404},
    ),
]


def _rulesets(world: World) -> dict[str, Any]:
    from tests.certificates.builders import load_rulesets

    load_rulesets(world.app)
    return {}


def _extension(world: World) -> dict[str, Any]:
    _rulesets(world)
    return {"from": "2026-01-01", "until": "2026-12-31", "extra_days": 30, "reason": "emergency"}


def _certificate(world: World) -> dict[str, Any]:
    from tests.certificates.builders import matrix_certificate

    matrix_certificate(world)
    return {}


def _revocation(world: World) -> dict[str, Any]:
    _certificate(world)
    return {"reason": "issued in error"}


CERTIFICATE = "/api/v1/certificates/KZ-MATR-X239"  # tests.certificates.builders.MATRIX_CERTIFICATE
ENDPOINTS += [
    Endpoint("list rulesets", "GET", "/api/v1/rulesets", frozenset(CALLERS), _rulesets, True),
    Endpoint("read ruleset", "GET", "/api/v1/rulesets/KZ", frozenset(CALLERS), _rulesets, True),
    Endpoint(
        "extend ruleset validity",
        "POST",
        "/api/v1/rulesets/KZ/extensions",
        frozenset({"admin"}),
        _extension,
    ),
    Endpoint(
        "read certificate",
        "GET",
        CERTIFICATE,
        frozenset({"clinic TJ-DUS-0007", "admin"}),
        _certificate,
    ),
    *(
        Endpoint(
            f"download certificate {name}",
            "GET",
            f"{CERTIFICATE}/{name}",
            frozenset({"clinic TJ-DUS-0007"}),
            _certificate,
        )
        for name in ("qr.svg", "qr.png", "card.smart-health-card", "certificate.pdf")
    ),
    Endpoint(
        "revoke certificate",
        "POST",
        f"{CERTIFICATE}/revoke",
        frozenset({"clinic TJ-DUS-0007", "accreditor TJ", "admin"}),
        _revocation,
    ),
]


def _verification(world: World) -> dict[str, Any]:
    from tests.certificates.builders import matrix_certificate

    return {"certificate_id": matrix_certificate(world).id, "birth_date": "1991-03-14"}


ENDPOINTS += [
    Endpoint("verify", "POST", "/api/v1/verify", frozenset(CALLERS), _verification, True),
    Endpoint("trust list", "GET", "/api/v1/trust-list", frozenset(CALLERS), public=True),
    Endpoint(
        "authority view",
        "GET",
        "/api/v1/authority/examinations/{examination}?purpose_of_use=GOV",
        frozenset({"authority KZ"}),
        _rulesets,
    ),
]


ENDPOINTS += [
    Endpoint(
        "surveillance extract",
        "GET",
        "/api/v1/surveillance/extract?from=2026-Q3&group_by=sex&format=csv",
        frozenset({"ministry TJ", "admin"}),
    ),
]


def _lookup(_: World) -> dict[str, Any]:
    return {
        "document": {"country": "TJ", "number": "401234567"},
        "birth_date": "1991-03-14",
        "destination": "KZ",
    }


ENDPOINTS += [
    Endpoint(
        "look up a person's certificates",
        "POST",
        "/api/v1/persons/lookup",
        frozenset({"clinic TJ-DUS-0007", "clinic KG-BIS-0001", "authority KZ"}),
        _lookup,
    ),
    Endpoint(
        "earlier examinations",
        "GET",
        "/api/v1/examinations/{examination}/history?purpose_of_use=COC",
        frozenset({"clinic TJ-DUS-0007"}),
        expected={"clinic KG-BIS-0001": 404},
    ),
]


ENDPOINTS += [
    Endpoint(
        "fraud signals",
        "GET",
        "/api/v1/fraud/signals",
        frozenset({"accreditor TJ", "accreditor KG", "admin"}),
    ),
    Endpoint(
        "fraud signals of a country",
        "GET",
        "/api/v1/fraud/signals?country=TJ",
        frozenset({"accreditor TJ", "admin"}),
    ),
]

REFERRAL = "/api/v1/referrals/{referral}"
ENDPOINTS += [
    Endpoint(
        "list referrals",
        "GET",
        "/api/v1/referrals",
        frozenset({"clinic TJ-DUS-0007", "clinic KG-BIS-0001"}),
    ),
    Endpoint(
        "read referral", "GET", REFERRAL, frozenset({"clinic TJ-DUS-0007", "clinic KG-BIS-0001"})
    ),
    Endpoint(
        "update referral",
        "POST",
        f"{REFERRAL}/status",
        frozenset({"clinic KG-BIS-0001"}),  # the facility named; the referring clinic may not
        lambda _: {"status": "accepted"},
    ),
]


def _referral(world: World) -> str:
    """A referral by TJ-DUS-0007 to the programme facility KG-BIS-0001."""
    from sqlalchemy import select

    from registry.referrals.models import Referral
    from tests.bundles import body, examination_bundle

    bundle = examination_bundle(number="MATRIX-R", referrals=[("tb-suspected", "KG-BIS-0001")])
    response = world.http.post(
        "/api/v1/examinations",
        headers=world.bearer("clinic", clinic_id="TJ-DUS-0007"),
        data=body(bundle),
        content_type="application/fhir+json",
    )
    assert response.status_code == 201, response.json
    with world.ctx.db.read_session() as session:
        return str(session.scalars(select(Referral.id)).one())


def _examination(world: World) -> str:
    from tests.bundles import body, examination_bundle

    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    response = world.http.post(
        "/api/v1/examinations",
        headers=headers,
        data=body(examination_bundle(number="MATRIX-1")),
        content_type="application/fhir+json",
    )
    assert response.status_code == 201, response.json
    return str(response.json["id"])


def _kid(world: World) -> str:
    from registry.accreditation.models import Clinic

    with world.ctx.db.read_session() as session:
        clinic = session.get(Clinic, "TJ-DUS-0007")
        assert clinic is not None
        return clinic.keys[0].kid


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_role_matrix(world: World, endpoint: Endpoint, caller: str) -> None:
    world.clinic("TJ-DUS-0007")
    world.clinic("KG-BIS-0001")
    spec = CALLERS[caller]
    headers = {} if spec is None else world.bearer(spec[0], **spec[1])
    values = {}
    if "{kid}" in endpoint.path:
        values["kid"] = _kid(world)
    if "{examination}" in endpoint.path:
        values["examination"] = _examination(world)
    if "{referral}" in endpoint.path:
        values["referral"] = _referral(world)
    path = endpoint.path.format(**values)
    if endpoint.raw_body is not None:
        response = world.http.open(
            path,
            method=endpoint.method,
            headers=headers,
            data=endpoint.raw_body(world),
            content_type="application/fhir+json",
        )
    else:
        body = endpoint.body(world) if endpoint.body else None
        response = world.http.open(path, method=endpoint.method, json=body, headers=headers)
    if caller in endpoint.expected:
        assert response.status_code == endpoint.expected[caller], (caller, response.json)
    elif caller in endpoint.allowed or endpoint.public:
        assert 200 <= response.status_code < 300, (caller, response.json)
    elif spec is None:
        assert response.status_code == 401, response.json
        assert response.json["error"] == "invalid_token"
    else:
        assert response.status_code == 403, (caller, response.json)
        assert response.json["error"] == "forbidden"
