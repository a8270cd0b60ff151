"""Ruleset versions that change: a version can be closed; the version applied is the one shown."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.certificates import catalogue
from registry.certificates.models import (
    CertificateRevocation,
    RulesetReevaluation,
    RulesetVersion,
)
from registry.errors import Conflict
from registry.events import CertificateRevoked, MessageBus
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


def _reevaluate(world: World, *, batch: int = 200) -> list[str]:
    """What the rulesets worker does: batches until no job may run; the certificates revoked."""
    from registry.certificates import service

    revoked: list[str] = []
    while True:
        with world.ctx.db.unit_of_work() as uow:
            progress = service.reevaluate_batch(uow, batch=batch)
            if progress is None:
                return revoked
            uow.commit()
        revoked += progress.revoked_now


def _jobs(world: World) -> list[tuple[str, int, str, int, int, int]]:
    with world.ctx.db.read_session() as session:
        return [
            (j.destination, j.version, j.state, j.judged, j.total, j.revoked)
            for j in session.scalars(select(RulesetReevaluation).order_by(RulesetReevaluation.id))
        ]


def _publish_kz2(world: World, folder: Path, *, applies_to_issued: bool) -> None:
    """KZ version 2 published as `registry init` publishes it (which only queues the work)."""
    from registry.certificates import service

    _stricter_kz(folder, applies_to_issued=applies_to_issued)
    with world.ctx.db.unit_of_work() as uow:
        assert service.sync_rulesets(uow, profiles_dir=folder.parent) == ["KZ.v2"]
        uow.commit()


def test_a_version_for_issued_certificates_revokes_those_it_no_longer_accepts(
    world: World, rulesets_dir: Path
) -> None:
    publish(world)
    fit = certified(submit(world, number="RE-1"))["KZ"]
    positive = certified(
        submit(world, number="RE-2", passport="P5550001", outcomes={"hiv-screening": "positive"})
    )["KZ"]
    _publish_kz2(world, rulesets_dir, applies_to_issued=True)
    # publishing judges nothing: the job waits for the worker
    assert _jobs(world) == [("KZ", 2, "pending", 0, 0, 0)]
    clinic = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    before = world.http.get(f"/api/v1/certificates/{positive.id}", headers=clinic).json
    assert before["status"] == "valid"

    assert _reevaluate(world) == [positive.id]
    assert _jobs(world) == [("KZ", 2, "done", 2, 2, 1)]
    assert _reevaluate(world) == []  # idempotent
    revoked = world.http.get(f"/api/v1/certificates/{positive.id}", headers=clinic).json
    assert revoked["status"] == "revoked"
    assert revoked["status_reason"] == "ruleset-changed: KZ version 2 (unresolved-finding)"
    assert revoked["revoked_at"] is not None
    kept = world.http.get(f"/api/v1/certificates/{fit.id}", headers=clinic).json
    assert kept["status"] == "valid"
    # on the revocation list, so every verifier (offline too) sees it revoked
    crl = world.http.get(f"/.well-known/crl/{positive.kid}.json").json
    assert any(entry.startswith(f"{positive.rid}.") for entry in crl["rids"])
    with world.ctx.db.read_session() as session:
        finished = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "ruleset.reevaluate")
        ).one()
    assert finished.object_id == "KZ.v2"
    assert finished.detail == {"judged": 2, "revoked": 1}


def test_revocation_for_a_changed_ruleset_publishes_certificate_revoked(
    world: World, rulesets_dir: Path
) -> None:
    from registry.certificates import service

    publish(world)
    positive = certified(submit(world, outcomes={"hiv-screening": "positive"}))["KZ"]
    _publish_kz2(world, rulesets_dir, applies_to_issued=True)
    seen: list[CertificateRevoked] = []
    with world.ctx.db.unit_of_work() as uow:
        uow.bus = MessageBus({CertificateRevoked: [lambda _uow, event: seen.append(event)]})
        progress = service.reevaluate_batch(uow)
        uow.commit()
    assert progress is not None and progress.revoked_now == (positive.id,)
    assert [(e.certificate.id, e.reason) for e in seen] == [
        (positive.id, "ruleset-changed: KZ version 2 (unresolved-finding)")
    ]


def test_a_reevaluation_stopped_by_a_crash_resumes_after_its_last_batch(
    world: World, rulesets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.certificates import reevaluation

    publish(world)
    revoked_ids = sorted(
        certified(
            submit(
                world,
                number=f"CR-{n}",
                passport=f"P555100{n}",
                outcomes={"hiv-screening": "positive"},
            )
        )["KZ"].id
        for n in range(3)
    )
    _publish_kz2(world, rulesets_dir, applies_to_issued=True)
    judge = reevaluation._failed
    calls: list[str] = []

    def crashing(uow, certificate, ruleset, today):  # type: ignore[no-untyped-def]
        calls.append(certificate.id)
        if len(calls) == 2:
            raise RuntimeError("the worker's host went away")
        return judge(uow, certificate, ruleset, today)

    monkeypatch.setattr(reevaluation, "_failed", crashing)
    with pytest.raises(RuntimeError):
        _reevaluate(world, batch=1)
    # the first batch stayed committed, the second rolled back whole
    assert _jobs(world) == [("KZ", 2, "running", 1, 3, 1)]
    monkeypatch.setattr(reevaluation, "_failed", judge)

    assert _reevaluate(world, batch=1) == revoked_ids[1:]
    assert _jobs(world) == [("KZ", 2, "done", 3, 3, 3)]
    with world.ctx.db.read_session() as session:
        listed = session.scalars(
            select(CertificateRevocation.certificate_id).order_by(
                CertificateRevocation.certificate_id
            )
        ).all()
    assert listed == revoked_ids  # each certificate revoked once


def test_a_version_waits_for_its_first_day_before_it_judges_issued_certificates(
    world: World, rulesets_dir: Path
) -> None:
    publish(world)
    positive = certified(submit(world, outcomes={"hiv-screening": "positive"}))["KZ"]
    first_day = datetime.now(UTC).date() + timedelta(days=30)
    _stricter_kz(rulesets_dir, applies_to_issued=True)
    _edit(rulesets_dir, "KZ.v2.json", effective_from=first_day.isoformat())
    assert _sync(world, rulesets_dir) == ["KZ.v2"]
    with world.ctx.db.unit_of_work() as uow:
        from registry.certificates import service

        assert service.queue_reevaluations(uow) == ["KZ.v2"]
        assert service.queue_reevaluations(uow) == []  # once
        uow.commit()
    assert _reevaluate(world) == []
    assert _jobs(world) == [("KZ", 2, "pending", 0, 0, 0)]
    with time_machine.travel(datetime.combine(first_day, time(12), UTC), tick=False):
        # judged by the new rules though it was examined before they were in force
        assert _reevaluate(world) == [positive.id]


def test_a_version_not_declared_for_issued_certificates_leaves_them_alone(
    world: World, rulesets_dir: Path
) -> None:
    publish(world)
    positive = certified(submit(world, outcomes={"hiv-screening": "positive"}))["KZ"]
    _publish_kz2(world, rulesets_dir, applies_to_issued=False)
    assert _jobs(world) == []
    assert _reevaluate(world) == []
    clinic = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    assert (
        world.http.get(f"/api/v1/certificates/{positive.id}", headers=clinic).json["status"]
        == "valid"
    )


def test_an_extension_of_a_version_for_issued_certificates_judges_nothing_again(
    world: World, rulesets_dir: Path
) -> None:
    publish(world)
    _publish_kz2(world, rulesets_dir, applies_to_issued=True)
    with world.ctx.db.unit_of_work() as uow:
        _row, extended = catalogue.add_extension(
            uow,
            destination="KZ",
            starts=datetime.now(UTC).date(),
            ends=datetime.now(UTC).date(),
            extra_days=30,
            reason="emergency",
            actor=OPERATOR,
            now=datetime.now(UTC),
        )
        uow.commit()
    assert extended.version == 3 and not extended.applies_to_issued


@pytest.mark.committed
def test_the_worker_and_reevaluate_commands_work_off_the_queue_with_progress(
    world: World, rulesets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from registry.cli import main

    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(world.ctx.settings.keys_dir))
    monkeypatch.setenv("REGISTRY_DATABASE_URL", world.ctx.settings.database_url)
    publish(world)
    positive = certified(submit(world, outcomes={"hiv-screening": "positive"}))["KZ"]
    certified(submit(world, number="CLI-2", passport="P5552002"))
    _publish_kz2(world, rulesets_dir, applies_to_issued=True)

    status = CliRunner().invoke(main, ["rulesets", "status"])
    assert status.exit_code == 0, status.output
    assert "KZ.v2: pending, 0/0 judged, 0 revoked" in status.output
    worker = CliRunner().invoke(main, ["rulesets", "worker", "--once", "--batch", "1"])
    assert worker.exit_code == 0, worker.output
    assert "KZ.v2: 1/2 certificates judged" in worker.output
    assert "KZ.v2: 2/2 certificates judged, 1 revoked as ruleset-changed (done)" in worker.output
    assert f"  revoked {positive.id}" in worker.output
    again = CliRunner().invoke(main, ["rulesets", "reevaluate"])
    assert again.exit_code == 0, again.output
    assert again.output == "certificates: every re-evaluation done\n"


def test_a_ruleset_changed_revocation_is_shown_to_the_clinic_and_to_the_holder(
    world: World, rulesets_dir: Path
) -> None:
    from registry.certificates.holder_page import holder_page
    from registry.certificates.holders import holder_secret

    publish(world)
    world.clinic("TJ-KHU-0003", purposes=("pre-departure", "return"))
    today = datetime.now(UTC).date()
    departure = submit(
        world, outcomes={"hiv-screening": "positive"}, examined_on=today - timedelta(days=20)
    )
    positive = certified(departure)["KZ"]
    _publish_kz2(world, rulesets_dir, applies_to_issued=True)
    assert _reevaluate(world) == [positive.id]

    clinic = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    shown = world.http.get(f"/api/v1/certificates/{positive.id}", headers=clinic).json
    assert shown["revocation_reason"] == "ruleset-changed"
    revoked_at = datetime.fromisoformat(shown["revoked_at"])
    assert abs(revoked_at - datetime.now(UTC)) < timedelta(minutes=5)
    # the clinic examining the migrant on return sees it in the history of earlier examinations
    back = submit(
        world,
        clinic_id="TJ-KHU-0003",
        number="RET-1",
        purpose="return",
        examined_on=today - timedelta(days=5),
    )
    history = world.http.get(
        f"/api/v1/examinations/{back.examination.id}/history?purpose_of_use=TREAT",
        headers=world.bearer("clinic", clinic_id="TJ-KHU-0003"),
    )
    assert history.status_code == 200, history.json
    [earlier] = history.json["earlier"]
    [listed] = [c for c in earlier["certified_for"] if c["certificate_id"] == positive.id]
    assert listed["status"] == "revoked"
    assert listed["revocation_reason"] == "ruleset-changed"
    assert datetime.fromisoformat(listed["revoked_at"]) == revoked_at
    # the holder's page data: the code and the date, never the clinical reasons
    with world.ctx.db.unit_of_work() as uow:
        secret = holder_secret(uow.keystore, examination_id=departure.examination.id)
        page = holder_page(uow, secret=secret)
    [held] = [c for c in page.certificates if c.id == positive.id]
    assert (held.status, held.revocation_reason) == ("revoked", "ruleset-changed")
    assert held.revoked_at == revoked_at
