"""Revocation: by the clinic or its accreditor, on amendment and withdrawal, on a stolen key."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from registry.accreditation import service as accreditation
from registry.accreditation.models import Clinic
from registry.audit.models import AuditEvent
from registry.certificates import service as certificates
from registry.certificates import shc
from registry.certificates.models import Certificate
from tests.bundles import examination_bundle
from tests.certificates.builders import (
    amend,
    certified,
    load_rulesets,
    stored,
    submit,
    withdraw,
)
from tests.support import OPERATOR, World

pytestmark = pytest.mark.postgres  # revocation-list counters are updated in SQL


@pytest.fixture(autouse=True)
def _published(world: World) -> None:
    load_rulesets(world.app)
    world.clinic("TJ-DUS-0007")
    world.clinic("KG-BIS-0001")


def _crl(world: World, kid: str | None = None) -> dict:
    kid = kid or world.ctx.keystore.active("certificate").kid
    response = world.http.get(f"/.well-known/crl/{kid}.json")
    assert response.status_code == 200, response.json
    return dict(response.json)


def _crl_version(world: World, kid: str) -> int | None:
    keys = world.http.get("/.well-known/jwks.json").json["keys"]
    (key,) = [k for k in keys if k["kid"] == kid]
    return key.get("crlVersion")


def _revoke(world: World, certificate_id: str, headers: dict[str, str], reason: str = "fraud"):
    return world.http.post(
        f"/api/v1/certificates/{certificate_id}/revoke", json={"reason": reason}, headers=headers
    )


def _card_nbf(world: World, certificate: Certificate) -> int:
    token = certificates.certificate_card(certificate, cipher=world.ctx.cipher)
    return int(shc.decode_card(token)[1]["nbf"])


def test_the_issuing_clinic_revokes_its_certificate_with_a_reason(world: World) -> None:
    kz = certified(submit(world))["KZ"]
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    response = _revoke(world, kz.id, headers, reason="identity borrowed")
    assert response.status_code == 200, response.json
    assert (response.json["id"], response.json["status"]) == (kz.id, "revoked")
    assert response.json["status_reason"] == "identity borrowed"
    assert response.json["revoked_at"] is not None
    assert _revoke(world, kz.id, headers).status_code == 409
    with world.ctx.db.read_session() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "certificate.revoke")
        ).one()
    assert (event.object_id, event.role) == (kz.id, "clinic")
    assert "identity borrowed" not in str(event.detail)


def test_a_clinic_cannot_revoke_another_clinics_certificate(world: World) -> None:
    kz = certified(submit(world))["KZ"]
    response = _revoke(world, kz.id, world.bearer("clinic", clinic_id="KG-BIS-0001"))
    assert response.status_code == 403
    assert stored(world, kz.id).status == "valid"


def test_the_accreditor_of_the_clinics_country_revokes_and_no_other(world: World) -> None:
    issued = certified(submit(world))
    assert (
        _revoke(world, issued["KZ"].id, world.bearer("accreditor", country="KG")).status_code == 403
    )
    assert (
        _revoke(world, issued["KZ"].id, world.bearer("accreditor", country="TJ")).status_code == 200
    )
    assert _revoke(world, issued["RU"].id, world.bearer("admin")).status_code == 200
    assert _revoke(world, issued["TM"].id, world.bearer("employer")).status_code == 403
    assert _revoke(world, issued["TM"].id, {}).status_code == 401


def test_a_revocation_needs_a_reason(world: World) -> None:
    kz = certified(submit(world))["KZ"]
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    response = world.http.post(f"/api/v1/certificates/{kz.id}/revoke", json={}, headers=headers)
    assert response.status_code == 422
    assert _revoke(world, "KZ-2222-2222", headers).status_code == 404


def test_revoked_and_amended_certificates_are_listed_with_the_right_ctr(world: World) -> None:
    kid = world.ctx.keystore.active("certificate").kid
    # published empty from the start: ctr 1, no rids, and the JWKS announces it
    assert _crl(world) == {"kid": kid, "method": "rid", "ctr": 1, "rids": []}
    assert _crl_version(world, kid) == 1
    assert world.http.get("/.well-known/crl/not-a-key.json").status_code == 404
    token_kid = world.ctx.keystore.active("token").kid
    assert world.http.get(f"/.well-known/crl/{token_kid}.json").status_code == 404
    issuer_kids = {k["kid"] for k in world.http.get("/.well-known/jwks.json").json["keys"]}
    assert token_kid not in issuer_kids
    first = submit(world)
    second = certified(submit(world, number="2026-000002"))
    revoked = certified(first)["KZ"]
    assert (
        _revoke(world, revoked.id, world.bearer("clinic", clinic_id="TJ-DUS-0007")).status_code
        == 200
    )

    crl = _crl(world)
    assert (crl["kid"], crl["method"], crl["ctr"]) == (kid, "rid", 2)
    (entry,) = crl["rids"]
    rid, _, timestamp = entry.partition(".")
    assert rid == revoked.rid and int(timestamp) > revoked.signed_at.timestamp()
    assert shc.rid_revoked(crl, rid=revoked.rid, nbf=_card_nbf(world, revoked))
    assert _crl_version(world, kid) == 2

    amended = amend(
        world,
        first.examination.id,
        examination_bundle(number="2026-000001", outcomes={"hbsag": "positive"}),
    )
    assert amended.created and amended.version.version == 2
    renewed = certified(amended)
    assert sorted(renewed) == ["KZ", "RU", "TM"]
    assert all(c.version_id == amended.version.id for c in renewed.values())
    superseded = [stored(world, certified(first)[d].id) for d in ("RU", "TM")]
    assert [c.status for c in superseded] == ["superseded", "superseded"]
    assert stored(world, revoked.id).status == "revoked"  # not listed twice

    crl = _crl(world)
    assert crl["ctr"] == 4
    listed = {entry.partition(".")[0] for entry in crl["rids"]}
    assert listed == {revoked.rid, *(c.rid for c in superseded)}
    for certificate in [*renewed.values(), *second.values()]:
        assert not shc.rid_revoked(crl, rid=certificate.rid, nbf=_card_nbf(world, certificate))
    assert _crl_version(world, kid) == 4


def test_a_withdrawn_examinations_certificates_are_revoked(world: World) -> None:
    submission = submit(world)
    withdraw(world, submission.examination.id)
    for certificate in certified(submission).values():
        now = stored(world, certificate.id)
        assert (now.status, now.status_reason) == ("revoked", "examination entered in error")
    assert _crl(world)["ctr"] == 4


def test_a_compromised_clinic_key_revokes_exactly_what_it_signed_after_the_compromise(
    world: World,
) -> None:
    before = certified(submit(world))
    since = datetime.now(UTC)
    after = certified(submit(world, number="2026-000002"))
    elsewhere = certified(
        submit(world, examination_bundle(clinic_id="KG-BIS-0001"), clinic_id="KG-BIS-0001")
    )
    with world.ctx.db.unit_of_work() as uow:
        clinic = uow.session.get(Clinic, "TJ-DUS-0007")
        assert clinic is not None
        kid = clinic.keys[0].kid
        accreditation.change_key_status(
            uow,
            principal=OPERATOR,
            kid=kid,
            status="compromised",
            reason="laptop stolen",
            effective_at=since,
        )  # revokes, in the same transaction, what the key signed from `since` on
        uow.commit()
        again = certificates.revoke_after_key_compromise(
            uow, kid=kid, since=since, actor=OPERATOR, now=datetime.now(UTC)
        )
    assert again == [], "nothing is left to revoke a second time"
    for certificate in after.values():
        assert stored(world, certificate.id).status == "revoked"
    for certificate in [*before.values(), *elsewhere.values()]:
        assert stored(world, certificate.id).status == "valid"
    assert _crl(world)["ctr"] == 4


def test_the_log_and_the_holder_page_name_each_ending_by_the_same_code(world: World) -> None:
    """Each way a certificate ends has one code: its public leaves and its holder's page agree."""
    from registry.certificates.holder_page import holder_page
    from registry.certificates.revocation import revoke_as_ruleset_changed
    from registry.certificates.rulesets import load_rulesets as read_rulesets
    from registry.transparency.models import LogEntry
    from registry.transparency.reasons import REVOCATION_CODES
    from tests.certificates.builders import holder_secret
    from tests.certificates.conftest import RULESETS_DIR

    clinic = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    # KZ revoked by its clinic with a reason of theirs, RU and TM superseded by an amendment
    first = submit(world, number="END-1")
    assert _revoke(world, certified(first)["KZ"].id, clinic, reason="not ours").status_code == 200
    amend(
        world,
        first.examination.id,
        examination_bundle(number="END-1", outcomes={"hbsag": "positive"}),
    )
    withdraw(world, submit(world, number="END-2").examination.id)  # entered in error
    changed = certified(submit(world, number="END-3"))["KZ"]
    (kz,) = [r for r in read_rulesets(RULESETS_DIR) if r.destination == "KZ"]
    since = datetime.now(UTC)
    stolen = submit(world, examination_bundle(clinic_id="KG-BIS-0001"), clinic_id="KG-BIS-0001")
    with world.ctx.db.unit_of_work() as uow:
        ending = uow.session.get(Certificate, changed.id)
        assert ending is not None
        revoke_as_ruleset_changed(
            uow, ending, ruleset=kz, failed=["unresolved-finding"], actor=OPERATOR, now=since
        )
        accreditation.change_key_status(
            uow,
            principal=OPERATOR,
            kid=str(stolen.version.signing_kid),
            status="compromised",
            reason="laptop stolen",
            effective_at=since,
        )
        uow.commit()

    with world.ctx.db.read_session() as session:
        ended = session.scalars(select(Certificate).where(Certificate.status != "valid")).all()
        leaves = session.scalars(
            select(LogEntry.body).where(
                LogEntry.kind.in_(["certificate.revoked", "certificate.superseded", "card.revoked"])
            )
        ).all()
    shown: dict[str, str] = {}
    with world.ctx.db.unit_of_work() as uow:
        for certificate in ended:
            page = holder_page(uow, secret=holder_secret(world, certificate))
            shown |= {c.id: c.revocation_reason for c in page.certificates if c.revocation_reason}
    published: dict[tuple[str, str], set[str]] = {}
    for body in leaves:
        fields = json.loads(body)
        published.setdefault((fields["type"], fields["certificate"]), set()).add(fields["reason"])
    assert set(shown) == {c.id for c in ended}
    for certificate in ended:
        kind = f"certificate.{'superseded' if certificate.status == 'superseded' else 'revoked'}"
        code = {shown[certificate.id]}
        assert published[(kind, certificate.id)] == code, certificate.status_reason
        assert published[("card.revoked", certificate.id)] == code, certificate.status_reason
    # every code, and nothing else, on both sides
    assert sorted(set(shown.values())) == sorted(REVOCATION_CODES)
    assert {code for codes in published.values() for code in codes} == set(REVOCATION_CODES)
