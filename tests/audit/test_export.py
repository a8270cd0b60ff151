"""The audit log as FHIR AuditEvents: /fhir/AuditEvent for admin and accreditors, and a CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry.audit.service import record
from registry.auth.principal import Principal
from registry.cli import main
from tests.support import World

TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def _actor(country: str) -> Principal:
    return Principal(client_id=f"clinic-{country}", role="clinic", country=country)


@pytest.fixture
def events(world: World) -> World:
    """Four events: two countries, two actions, two days."""
    with world.ctx.db.unit_of_work() as uow:
        for country, action, at in (
            ("TJ", "examination.read", TODAY - timedelta(days=1)),
            ("TJ", "examination.submit", TODAY),
            ("KG", "examination.read", TODAY),
            ("TJ", "examination.read", TODAY),
        ):
            record(uow.session, actor=_actor(country), action=action, object_id="EX1", at=at)
        uow.commit()
    return world


def _search(world: World, query: str, role: str = "admin", **arguments: str):
    headers = world.bearer(role, **arguments)
    return world.http.get(f"/fhir/AuditEvent{query}", headers=headers)


def _actions(bundle: dict) -> list[tuple[str, str]]:
    return [
        (e["resource"]["subtype"][0]["code"], e["resource"]["recorded"][:10])
        for e in bundle["entry"]
        if e["resource"]["subtype"][0]["code"] != "audit.read"
        and not e["resource"]["subtype"][0]["code"].startswith("client.")
    ]


def test_admin_searches_audit_events_by_date_and_action(events: World) -> None:
    today, yesterday = TODAY.date().isoformat(), (TODAY - timedelta(days=1)).date().isoformat()
    response = _search(events, f"?date={today}&action=examination.read")
    assert response.status_code == 200, response.json
    assert response.headers["Content-Type"] == "application/fhir+json"
    bundle = response.json
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "searchset")
    assert _actions(bundle) == [("examination.read", today), ("examination.read", today)]
    resource = bundle["entry"][0]["resource"]
    assert resource["resourceType"] == "AuditEvent" and resource["action"] == "R"
    assert bundle["entry"][0]["fullUrl"].endswith(f"/fhir/AuditEvent/{resource['id']}")
    earlier = _search(events, f"?date=lt{today}").json
    assert _actions(earlier) == [("examination.read", yesterday)]
    window = _search(events, f"?date=ge{yesterday}&date=le{today}&action=examination.submit")
    assert _actions(window.json) == [("examination.submit", today)]


def test_an_accreditor_sees_only_its_countrys_events(events: World) -> None:
    response = _search(events, "?action=examination.read", "accreditor", country="KG")
    assert response.status_code == 200, response.json
    assert [
        e["resource"]["agent"][0]["who"]["identifier"]["value"] for e in response.json["entry"]
    ] == ["clinic-KG"]


def test_pages_follow_the_next_link(events: World) -> None:
    first = _search(events, "?action=examination.read&_count=2").json
    assert len(first["entry"]) == 2
    (following,) = [link["url"] for link in first["link"] if link["relation"] == "next"]
    second = _search(events, following.split("/fhir/AuditEvent", 1)[1]).json
    assert len(second["entry"]) == 1
    assert not [link for link in second["link"] if link["relation"] == "next"]
    ids = [e["resource"]["id"] for e in first["entry"] + second["entry"]]
    assert len(set(ids)) == 3


@pytest.mark.parametrize(
    ("role", "arguments", "status"),
    [
        (None, {}, 401),
        ("clinic", {"clinic_id": "TJ-DUS-0007"}, 403),
        ("authority", {"country": "KZ"}, 403),
        ("ministry", {"country": "TJ"}, 403),
        ("employer", {}, 403),
    ],
)
def test_other_callers_get_no_audit_events(
    events: World, role: str | None, arguments: dict[str, str], status: int
) -> None:
    if role == "clinic":
        events.clinic("TJ-DUS-0007")
    headers = events.bearer(role, **arguments) if role else {}
    response = events.http.get("/fhir/AuditEvent", headers=headers)
    assert response.status_code == status, response.json


@pytest.mark.parametrize("query", ["?date=yesterday", "?date=ge2026-13-01", "?_count=0", "?who=x"])
def test_a_bad_search_is_a_400(events: World, query: str) -> None:
    assert _search(events, query).status_code == 400


def test_every_export_is_itself_audited(events: World) -> None:
    _search(events, "?action=examination.read")
    after = _search(events, "?action=audit.read").json
    assert [e["resource"]["subtype"][0]["code"] for e in after["entry"]] == ["audit.read"]


def _who(bundle: dict) -> list[tuple[str, str, str | None]]:
    """(agent, action, entity) of each event found (an event recorded without a type has no
    FHIR entity, though the search finds it by its object id)."""
    return [
        (
            e["resource"]["agent"][0]["who"]["identifier"]["value"],
            e["resource"]["subtype"][0]["code"],
            e["resource"]
            .get("entity", [{"what": {"identifier": {}}}])[0]["what"]["identifier"]
            .get("value"),
        )
        for e in bundle["entry"]
        if e["resource"]["subtype"][0]["code"] != "audit.read"
        and not e["resource"]["subtype"][0]["code"].startswith("client.")
    ]


@pytest.fixture
def acted_on(events: World) -> World:
    """Two more events: another actor and other objects of two types."""
    with events.ctx.db.unit_of_work() as uow:
        record(
            uow.session,
            actor=_actor("TJ"),
            action="certificate.revoke",
            object_type="Certificate",
            object_id="KZ-7F3K-9QPX",
            at=TODAY,
        )
        record(
            uow.session,
            actor=Principal(client_id="accreditor-TJ", role="accreditor", country="TJ"),
            action="clinic.suspend",
            object_type="Clinic",
            object_id="EX1",
            at=TODAY,
        )
        uow.commit()
    return events


def test_audit_events_are_searched_by_agent(acted_on: World) -> None:
    found = _search(acted_on, "?agent=accreditor-TJ")
    assert found.status_code == 200, found.json
    assert _who(found.json) == [("accreditor-TJ", "clinic.suspend", "EX1")]
    # an identifier token, and alternatives separated by commas
    base = acted_on.ctx.settings.base_url
    either = _search(acted_on, f"?agent={base}/client|clinic-KG,accreditor-TJ").json
    assert _who(either) == [
        ("clinic-KG", "examination.read", None),
        ("accreditor-TJ", "clinic.suspend", "EX1"),
    ]
    both = _search(acted_on, "?agent=clinic-TJ&action=examination.read").json
    assert [who for who, _, _ in _who(both)] == ["clinic-TJ", "clinic-TJ"]


def test_audit_events_are_searched_by_entity_with_or_without_its_type(acted_on: World) -> None:
    by_id = _search(acted_on, "?entity=KZ-7F3K-9QPX").json
    assert _who(by_id) == [("clinic-TJ", "certificate.revoke", "KZ-7F3K-9QPX")]
    typed = _search(acted_on, "?entity=Clinic/EX1").json
    assert _who(typed) == [("accreditor-TJ", "clinic.suspend", "EX1")]
    assert _who(_search(acted_on, "?entity=Certificate/EX1").json) == []
    untyped = _search(acted_on, "?entity=EX1&agent=clinic-TJ&date=lt" + TODAY.date().isoformat())
    assert _who(untyped.json) == [("clinic-TJ", "examination.read", None)]


@pytest.mark.parametrize(
    "query", ["?agent=", "?entity=,", "?agent=a&agent=b", "?entity=" + ",".join("x" * 21)]
)
def test_a_bad_agent_or_entity_search_is_a_400(events: World, query: str) -> None:
    response = _search(events, query)
    assert response.status_code == 400
    assert ("agent" in response.json["message"]) or ("entity" in response.json["message"])


def test_one_audit_event_is_read_by_id_and_the_read_is_audited(events: World) -> None:
    listed = _search(events, "?action=examination.submit").json
    [entry] = [e for e in listed["entry"] if e["resource"]["subtype"][0]["code"] != "audit.read"]
    event_id = entry["resource"]["id"]
    response = events.http.get(f"/fhir/AuditEvent/{event_id}", headers=events.bearer("admin"))
    assert response.status_code == 200, response.json
    assert response.headers["Content-Type"] == "application/fhir+json"
    assert response.json == entry["resource"]
    reads = _search(events, f"?action=audit.read&entity=AuditEvent/{event_id}").json
    assert len(reads["entry"]) == 1


def test_an_accreditor_reads_its_countrys_event_and_not_anothers(events: World) -> None:
    listed = _search(events, "?action=examination.read").json["entry"]
    by_country = {
        e["resource"]["agent"][0]["who"]["identifier"]["value"]: e["resource"]["id"] for e in listed
    }
    headers = events.bearer("accreditor", country="KG")
    own = events.http.get(f"/fhir/AuditEvent/{by_country['clinic-KG']}", headers=headers)
    assert own.status_code == 200 and own.json["id"] == by_country["clinic-KG"]
    other = events.http.get(f"/fhir/AuditEvent/{by_country['clinic-TJ']}", headers=headers)
    missing = events.http.get("/fhir/AuditEvent/999999999", headers=headers)
    assert other.status_code == missing.status_code == 404
    assert other.json["message"].replace(by_country["clinic-TJ"], "N") == missing.json[
        "message"
    ].replace("999999999", "N")


@pytest.mark.parametrize("event_id", ["abc", "1e3", "-1", "9" * 40])
def test_an_audit_event_id_that_is_not_a_number_is_a_404(events: World, event_id: str) -> None:
    response = events.http.get(f"/fhir/AuditEvent/{event_id}", headers=events.bearer("admin"))
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("role", "arguments", "status"),
    [(None, {}, 401), ("ministry", {"country": "TJ"}, 403), ("employer", {}, 403)],
)
def test_other_callers_read_no_audit_event(
    events: World, role: str | None, arguments: dict[str, str], status: int
) -> None:
    headers = events.bearer(role, **arguments) if role else {}
    assert events.http.get("/fhir/AuditEvent/1", headers=headers).status_code == status
    assert events.http.get("/fhir/AuditEvent/abc", headers=headers).status_code == status


@pytest.mark.committed
def test_registry_audit_export_writes_ndjson_of_fhir_audit_events(
    events: World, tmp_path: Path
) -> None:
    settings = events.ctx.settings
    env = {
        "REGISTRY_DATABASE_URL": settings.database_url,
        "REGISTRY_KEYS_DIR": str(settings.keys_dir),
        "REGISTRY_BASE_URL": settings.base_url,
    }
    out = tmp_path / "audit.ndjson"
    since = TODAY.date().isoformat()
    result = CliRunner().invoke(
        main,
        ["audit", "export", "--since", since, "--action", "examination.read", "-o", str(out)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [r["subtype"][0]["code"] for r in lines] == ["examination.read", "examination.read"]
    assert {r["resourceType"] for r in lines} == {"AuditEvent"}
    assert all(r["recorded"] >= since for r in lines)
