"""Ruleset versions that change: a version can be closed; the version applied is the one shown."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.certificates import catalogue
from registry.certificates.models import RulesetVersion
from registry.errors import Conflict
from tests.certificates.builders import certified, submit
from tests.support import OPERATOR, World
from tests.verification.helpers import publish

SHIPPED = Path(__file__).resolve().parents[2] / "fhir_profiles" / "rulesets"
# a closing day after any examination a test submits, whatever the day of the run
CLOSES_ON = (datetime.now(UTC).date() + timedelta(days=365)).isoformat()


@pytest.fixture
def rulesets_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rulesets"
    shutil.copytree(SHIPPED, folder)
    return folder


def _sync(world: World, folder: Path) -> list[str]:
    with world.ctx.db.unit_of_work() as uow:
        added = catalogue.sync_files(
            uow, rulesets_dir=folder, actor=OPERATOR, now=datetime.now(UTC)
        )
        uow.commit()
    return added


def _edit(folder: Path, name: str, **changes: object) -> None:
    path = folder / name
    document = json.loads(path.read_text("utf-8"))
    document.update(changes)
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2), "utf-8")


def test_adding_effective_until_closes_a_published_version(
    world: World, rulesets_dir: Path
) -> None:
    publish(world)
    _edit(rulesets_dir, "KZ.v1.json", effective_until=CLOSES_ON)
    assert _sync(world, rulesets_dir) == ["KZ.v1 closed"]
    with world.ctx.db.read_session() as session:
        row = session.scalars(
            select(RulesetVersion).where(
                RulesetVersion.destination == "KZ", RulesetVersion.version == 1
            )
        ).one()
        closed = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "ruleset.close")
        ).one()
    assert row.effective_until.isoformat() == CLOSES_ON
    assert row.document["effective_until"] == CLOSES_ON
    assert closed.object_id == "KZ.v1" and closed.detail["effective_until"] == CLOSES_ON
    assert _sync(world, rulesets_dir) == []  # and then it is up to date


def test_changing_the_rules_of_a_published_version_is_still_refused(
    world: World, rulesets_dir: Path
) -> None:
    publish(world)
    _edit(rulesets_dir, "KZ.v1.json", effective_until=CLOSES_ON, validity_days=30)
    with pytest.raises(Conflict, match="a change needs a new version number"):
        _sync(world, rulesets_dir)


def test_the_authority_view_shows_the_version_the_certificate_was_issued_under(
    world: World,
) -> None:
    publish(world)
    submission = submit(world)
    assert certified(submission)["KZ"].ruleset_version == 1
    with world.ctx.db.unit_of_work() as uow:  # a later version, in force on the same day
        catalogue.add_extension(
            uow,
            destination="KZ",
            starts=submission.version.examination_date,
            ends=submission.version.examination_date,
            extra_days=30,
            reason="emergency",
            actor=OPERATOR,
            now=datetime.now(UTC),
        )
        uow.commit()
    headers = world.bearer("authority", country="KZ")
    response = world.http.get(
        f"/api/v1/authority/examinations/{submission.examination.id}?purpose_of_use=GOV",
        headers=headers,
    )
    assert response.status_code == 200, response.json
    assert response.json["ruleset"]["version"] == 1


def _stricter_kz(folder: Path, *, applies_to_issued: bool) -> None:
    """KZ version 2: HIV disqualifies (as in RU), declared for issued certificates or not."""
    document = json.loads((folder / "KZ.v1.json").read_text("utf-8"))
    russian = json.loads((folder / "RU.v1.json").read_text("utf-8"))
    document["version"] = 2
    document["disqualifying_findings"] += [
        f for f in russian["disqualifying_findings"] if f["condition"] == "hiv"
    ]
    document["applies_to_issued"] = applies_to_issued
    (folder / "KZ.v2.json").write_text(json.dumps(document, ensure_ascii=False), "utf-8")


def _reevaluate(world: World) -> list[str]:
    from registry.certificates import service

    with world.ctx.db.unit_of_work() as uow:
        revoked = service.reevaluate_issued(uow)
        uow.commit()
    return revoked


def test_a_version_for_issued_certificates_revokes_those_it_no_longer_accepts(
    world: World, rulesets_dir: Path
) -> None:
    publish(world)
    fit = certified(submit(world, number="RE-1"))["KZ"]
    positive = certified(
        submit(world, number="RE-2", passport="P5550001", outcomes={"hiv-screening": "positive"})
    )["KZ"]
    _stricter_kz(rulesets_dir, applies_to_issued=True)
    assert _sync(world, rulesets_dir) == ["KZ.v2"]
    assert _reevaluate(world) == [positive.id]
    assert _reevaluate(world) == []  # idempotent
    clinic = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    revoked = world.http.get(f"/api/v1/certificates/{positive.id}", headers=clinic).json
    assert revoked["status"] == "revoked"
    assert revoked["status_reason"] == "ruleset-changed: KZ version 2 (unresolved-finding)"
    kept = world.http.get(f"/api/v1/certificates/{fit.id}", headers=clinic).json
    assert kept["status"] == "valid"
    # on the revocation list, so every verifier (offline too) sees it revoked
    crl = world.http.get(f"/.well-known/crl/{positive.kid}.json").json
    assert any(entry.startswith(f"{positive.rid}.") for entry in crl["rids"])


def test_a_version_not_declared_for_issued_certificates_leaves_them_alone(
    world: World, rulesets_dir: Path
) -> None:
    publish(world)
    positive = certified(submit(world, outcomes={"hiv-screening": "positive"}))["KZ"]
    _stricter_kz(rulesets_dir, applies_to_issued=False)
    assert _sync(world, rulesets_dir) == ["KZ.v2"]
    assert _reevaluate(world) == []
    clinic = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    assert (
        world.http.get(f"/api/v1/certificates/{positive.id}", headers=clinic).json["status"]
        == "valid"
    )
