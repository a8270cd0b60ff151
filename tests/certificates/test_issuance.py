"""Issuing: one verdict per destination, a certificate for each one met, rulesets as data."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from registry.audit.models import AuditEvent
from registry.certificates import catalogue
from registry.certificates import service as certificates
from registry.certificates.ids import is_certificate_id
from registry.certificates.models import Certificate, RulesetVersion
from registry.errors import Conflict
from tests.certificates.builders import (
    PROFILES_DIR,
    certified,
    example,
    load_rulesets,
    submit,
)
from tests.support import World


@pytest.fixture(autouse=True)
def _published(world: World) -> None:
    load_rulesets(world.app)
    world.clinic("TJ-DUS-0007")


def _certificates(world: World) -> list[Certificate]:
    with world.ctx.db.read_session() as session:
        return list(session.scalars(select(Certificate).order_by(Certificate.id)))


def test_a_fit_pre_departure_examination_is_certified_for_every_destination(
    world: World,
) -> None:
    examined_on = datetime.now(UTC).date() - timedelta(days=3)
    submission = submit(world, examined_on=examined_on)
    assert [(a.destination, a.met, a.reasons) for a in submission.assessments] == [
        ("KZ", True, ()),
        ("RU", True, ()),
        ("TM", True, ()),
    ]
    issued = certified(submission)
    for destination, certificate in issued.items():
        assert certificate.id.startswith(f"{destination}-") and is_certificate_id(certificate.id)
        assert certificate.status == "valid"
        assert certificate.purpose == "pre-departure"
        assert certificate.clinic_id == "TJ-DUS-0007"
        assert certificate.examination_id == submission.examination.id
        assert certificate.version_id == submission.version.id
        assert certificate.kid == world.ctx.keystore.active("certificate").kid
        # day one is the earliest required test; the syphilis result of the next day is the
        # last one the verdict rests on, so validity starts then
        assert certificate.valid_from == examined_on + timedelta(days=1)
        assert certificate.valid_until == examined_on + timedelta(days=89)
    assert sorted(c.id for c in _certificates(world)) == sorted(c.id for c in issued.values())


def test_kz_is_met_and_ru_failed_on_the_same_hiv_positive_examination(world: World) -> None:
    submission = submit(world, outcomes={"hiv-screening": "positive"})
    verdicts = {a.destination: a for a in submission.assessments}
    assert verdicts["KZ"].met and verdicts["KZ"].certificate is not None
    assert not verdicts["RU"].met and verdicts["RU"].certificate is None
    assert [(r.code, r.concept) for r in verdicts["RU"].reasons] == [
        ("unresolved-finding", "hiv-screening")
    ]
    assert not verdicts["TM"].met
    assert [c.destination for c in _certificates(world)] == ["KZ"]


def test_an_unfit_examination_yields_no_certificate_at_all(world: World) -> None:
    submission = submit(world, outcomes={"drug-screening": "positive"})
    assert len(submission.assessments) == 3
    for assessment in submission.assessments:
        assert not assessment.met and assessment.certificate is None
        assert [r.code for r in assessment.reasons] == ["disqualifying-finding"]
    assert _certificates(world) == []
    with world.ctx.db.read_session() as session:
        issued = session.scalar(
            select(func.count()).where(AuditEvent.action == "certificate.issue")
        )
    assert issued == 0


def test_a_return_examination_is_for_care_at_home_and_yields_no_certificate(world: World) -> None:
    world.clinic("KG-BIS-0003")
    submission = submit(world, example("valid-return.json"), clinic_id="KG-BIS-0003")
    assert submission.assessments == []
    assert _certificates(world) == []


def test_an_in_host_examination_finding_tb_yields_no_certificate_and_tells_the_clinic_why(
    world: World,
) -> None:
    world.clinic("KZ-ALA-0002", purposes=("in-host",))
    submission = submit(world, example("valid-in-host.json"), clinic_id="KZ-ALA-0002")
    verdicts = {a.destination: a for a in submission.assessments}
    assert sorted(verdicts) == ["KZ", "RU", "TM"]
    for assessment in verdicts.values():
        assert not assessment.met and assessment.certificate is None
        assert ("disqualifying-finding", "tb-naa") in {
            (r.code, r.concept) for r in assessment.reasons
        }
    assert _certificates(world) == []


def test_a_destination_without_a_ruleset_in_force_is_reported_to_the_clinic(
    world: World,
) -> None:
    with world.ctx.db.unit_of_work() as uow:
        uow.session.execute(
            RulesetVersion.__table__.delete().where(RulesetVersion.destination == "KZ")
        )
        uow.commit()
    submission = submit(world)
    stated = submission.assessments[0]
    assert (stated.destination, stated.met, stated.certificate) == ("KZ", False, None)
    assert [r.code for r in stated.reasons] == ["ruleset-not-in-force"]
    assert {a.destination for a in submission.assessments if a.met} == {"RU", "TM"}


def test_issuing_is_audited_without_personal_data(world: World) -> None:
    submission = submit(world)
    with world.ctx.db.read_session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "certificate.issue")
        ).all()
    assert sorted(e.object_id for e in events) == sorted(
        c.id for c in certified(submission).values()
    )
    for event in events:
        text = json.dumps(event.detail, ensure_ascii=False)
        assert "Karimov" not in text and "1991" not in text
        assert event.detail["examination"] == submission.examination.id


# -- rulesets --------------------------------------------------------------------------------
def test_rulesets_are_published_with_their_legal_basis_and_requirements(world: World) -> None:
    published = world.http.get("/api/v1/rulesets").json
    assert [(r["destination"], r["version"]) for r in published] == [
        ("KZ", 1),
        ("RU", 1),
        ("TM", 1),
    ]
    kz = world.http.get("/api/v1/rulesets/KZ").json[0]
    assert kz["effective_from"] == "2025-01-01" and kz["effective_until"] is None
    assert kz["validity_days"] == 90
    assert kz["accepted_purposes"] == ["pre-departure", "in-host", "periodic"]
    assert [t["key"] for t in kz["required_tests"]] == ["tuberculosis-screening", "hiv-test"]
    assert "hiv" not in {f["condition"] for f in kz["disqualifying_findings"]}
    assert any("Order 665" in b["citation"] for b in kz["legal_basis"])
    assert kz["source"] == "file" and kz["extensions"] == []
    assert world.http.get("/api/v1/rulesets/XX").status_code == 404


def test_loading_rulesets_again_adds_nothing(world: World) -> None:
    assert load_rulesets(world.app) == []


def test_a_changed_ruleset_file_under_a_published_version_is_refused(
    world: World, tmp_path: Path
) -> None:
    shutil.copytree(PROFILES_DIR / "rulesets", tmp_path / "rulesets")
    path = tmp_path / "rulesets" / "KZ.v1.json"
    document = json.loads(path.read_text("utf-8"))
    document["validity_days"] = 120
    path.write_text(json.dumps(document), "utf-8")
    with world.ctx.db.unit_of_work() as uow, pytest.raises(Conflict, match="new version"):
        certificates.sync_rulesets(uow, profiles_dir=tmp_path)
    document["version"] = 2
    (tmp_path / "rulesets" / "KZ.v2.json").write_text(json.dumps(document), "utf-8")
    path.write_text((PROFILES_DIR / "rulesets" / "KZ.v1.json").read_text("utf-8"), "utf-8")
    with world.ctx.db.unit_of_work() as uow:
        assert certificates.sync_rulesets(uow, profiles_dir=tmp_path) == ["KZ.v2"]
        uow.commit()


def test_parsed_rulesets_are_cached_per_document(world: World) -> None:
    with world.ctx.db.read_session() as session:
        first = catalogue.rulesets(session)
        again = catalogue.rulesets(session)
    assert [r.destination for r in first] == ["KZ", "RU", "TM"]
    assert all(a is b for a, b in zip(first, again, strict=True))


def test_an_administrator_extends_validity_for_everyone_with_a_new_version(world: World) -> None:
    submission = submit(world)
    kz = certified(submission)["KZ"]
    body = {
        "from": kz.valid_until.isoformat(),
        "until": (kz.valid_until + timedelta(days=30)).isoformat(),
        "extra_days": 45,
        "reason": "border closure",
    }
    clinic = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    refused = world.http.post("/api/v1/rulesets/KZ/extensions", json=body, headers=clinic)
    assert refused.status_code == 403
    response = world.http.post(
        "/api/v1/rulesets/KZ/extensions", json=body, headers=world.bearer("admin")
    )
    assert response.status_code == 201, response.json
    assert response.json["extended"] == 1
    version = response.json["ruleset"]
    assert (version["version"], version["source"]) == (2, "extension")
    assert version["extensions"] == [
        {
            "from": body["from"],
            "until": body["until"],
            "extra_days": 45,
            "reason": "border closure",
        }
    ]
    with world.ctx.db.read_session() as session:
        extended = session.get(Certificate, kz.id)
        assert extended is not None
        assert extended.valid_until == kz.valid_until + timedelta(days=45)
        assert extended.base_valid_until == kz.valid_until
        assert len(extended.cards) == 2
        others = session.scalars(select(Certificate).where(Certificate.destination != "KZ"))
        assert all(c.valid_until == kz.valid_until and len(c.cards) == 1 for c in others)
    # later examinations are judged by the new version
    later = submit(world, number="2026-000002")
    assert {a.destination: a.ruleset_version for a in later.assessments}["KZ"] == 2
    assert world.http.get("/api/v1/rulesets/KZ").json[-1]["version"] == 2


def test_an_extension_window_must_be_in_order(world: World) -> None:
    body = {"from": "2026-05-01", "until": "2026-04-01", "extra_days": 10, "reason": "flood"}
    response = world.http.post(
        "/api/v1/rulesets/KZ/extensions", json=body, headers=world.bearer("admin")
    )
    assert response.status_code == 422


def test_an_identical_resubmission_answers_what_the_first_submission_answered(
    world: World,
) -> None:
    from tests.bundles import body, examination_bundle

    clinic = {**world.bearer("clinic", clinic_id="TJ-DUS-0007")}
    clinic["Content-Type"] = "application/fhir+json"
    # HIV reactive: Kazakhstan's rules are met, Russia's and Turkmenistan's are not
    bundle = body(examination_bundle(number="REPLAY-1", outcomes={"hiv-screening": "positive"}))
    first = world.http.post("/api/v1/examinations", data=bundle, headers=clinic)
    again = world.http.post("/api/v1/examinations", data=bundle, headers=clinic)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["created"] is False and first.json["created"] is True
    assert again.json["assessments"] == first.json["assessments"]
    verdicts = {a["destination"]: a for a in again.json["assessments"]}
    assert sorted(verdicts) == ["KZ", "RU", "TM"]
    assert verdicts["KZ"]["met"] is True and is_certificate_id(verdicts["KZ"]["certificate_id"])
    assert verdicts["RU"]["met"] is False and verdicts["RU"]["certificate_id"] is None
    assert verdicts["RU"]["reasons"], verdicts["RU"]
    # the replay issued nothing new
    assert len(_certificates(world)) == 1
