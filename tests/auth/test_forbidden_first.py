"""A role that may never perform an operation gets 403 before its input is validated."""

from __future__ import annotations

import pytest

from tests.support import World

# (method, path with a garbage query, the permission, a role without it)
OPERATIONS = [
    ("POST", "/api/v1/clinics", "clinic.manage", ("employer", {})),
    (
        "POST",
        "/api/v1/clinics/TJ-DUS-0007/status",
        "clinic.manage",
        ("ministry", {"country": "TJ"}),
    ),
    (
        "POST",
        "/api/v1/clinics/TJ-DUS-0007/keys",
        "clinic.manage",
        ("clinic", {"clinic_id": "TJ-DUS-0007"}),
    ),
    (
        "POST",
        "/api/v1/clinics/TJ-DUS-0007/keys/k/status",
        "clinic.manage",
        ("authority", {"country": "KZ"}),
    ),
    ("POST", "/api/v1/rulesets/KZ/extensions", "ruleset.manage", ("accreditor", {"country": "TJ"})),
    ("POST", "/api/v1/certificates/KZ-7F3K-9QPX/revoke", "certificate.revoke", ("employer", {})),
    (
        "GET",
        "/api/v1/examinations/EX1?version=zero",
        "examination.read",
        ("authority", {"country": "KZ"}),
    ),
    ("POST", "/api/v1/examinations/EX1/withdraw", "examination.submit", ("admin", {})),
    (
        "GET",
        "/api/v1/examinations/EX1/history",
        "examination.read",
        ("ministry", {"country": "TJ"}),
    ),
    ("POST", "/api/v1/persons/lookup", "person.lookup", ("employer", {})),
    (
        "GET",
        "/api/v1/fraud/signals?since=never",
        "fraud.read",
        ("clinic", {"clinic_id": "TJ-DUS-0007"}),
    ),
    ("GET", "/api/v1/referrals?status=nonsense", "referral.read", ("employer", {})),
    ("POST", "/api/v1/referrals/R1/status", "referral.update", ("ministry", {"country": "TJ"})),
    ("GET", "/api/v1/surveillance/extract?year=abc", "surveillance.read", ("employer", {})),
    (
        "GET",
        "/api/v1/authority/examinations/EX1?purpose_of_use=CURIOSITY",
        "authority.read",
        ("ministry", {"country": "KZ"}),
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "permission", "caller"),
    OPERATIONS,
    ids=[f"{m} {p.split('?')[0]}" for m, p, _, _ in OPERATIONS],
)
def test_a_role_without_the_permission_gets_403_not_422(
    world: World, method: str, path: str, permission: str, caller: tuple[str, dict[str, str]]
) -> None:
    world.clinic("TJ-DUS-0007")
    role, arguments = caller
    headers = world.bearer(role, **arguments)
    response = world.http.open(
        path,
        method=method,
        data='{"nonsense": [1, 2]}',
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 403, response.get_data(as_text=True)[:300]
    assert response.json["error"] == "forbidden"
    assert permission in response.json["message"]
