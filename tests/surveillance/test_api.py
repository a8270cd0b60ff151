"""GET /api/v1/surveillance/extract: scoped, protected, signed, in every format; and the CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle
from flask import Flask
from sqlalchemy import select

from registry.cli import main
from registry.crypto import jws
from registry.crypto.keys import load_public_jwk
from registry.surveillance import service
from registry.surveillance.disclosure import ProtectedCube
from registry.surveillance.models import SurveillanceLayer
from registry.transparency.models import LogEntry
from tests.certificates.builders import load_rulesets, submit
from tests.support import World
from tests.surveillance.patterns import remember_patterns

pytestmark = (
    pytest.mark.postgres
)  # extracts read counts and stored patterns through dialect-specific SQL

URL = "/api/v1/surveillance/extract"
Q3 = {"granularity": "quarter", "from": "2026-Q3", "to": "2026-Q3"}


# every test's world holds the same counts: each pattern is computed once (patterns.py)
_PATTERNS: dict[bytes, ProtectedCube] = {}


@pytest.fixture
def world(app: Flask, monkeypatch: pytest.MonkeyPatch) -> World:
    """Eleven examinations in the third quarter of 2026: nine to KZ, two to RU, from TJ."""
    load_rulesets(app)
    service.PROTECTED.clear()
    remember_patterns(monkeypatch, _PATTERNS)
    world = World(app)
    world.clinic("TJ-DUS-0007")
    for n in range(11):
        submit(
            world,
            number=f"2026-Q3-{n}",
            examined_on=date(2026, 7 + n % 3, 2 + n),
            passport=f"70000000{n:02d}",
            destination="RU" if n in (3, 7) else "KZ",
            outcomes={"hiv-screening": "positive"} if n == 5 else None,
        )
    protect(world)
    return world


def protect(world: World, year: int = 2026) -> None:
    """What the surveillance worker does after new data: compute and store the year's pattern."""
    with world.ctx.db.unit_of_work() as uow:
        service.protected_year(uow.session, year=year, k=5, now=datetime.now(UTC), compute=True)
        uow.commit()


def extract(world: World, headers: dict[str, str], **params: str) -> object:
    return world.http.get(URL, query_string={**Q3, **params}, headers=headers)


def verified(world: World, response: object) -> None:
    """The detached JWS in the response verifies over the body with the published key."""
    token = response.headers["X-Extract-Signature"]  # type: ignore[attr-defined]
    header = jws.read_header(token)
    published = world.http.get("/.well-known/registry-keys.json").json["keys"]
    key = next(k for k in published if k["kid"] == header["kid"])
    assert key["purpose"] == "document"  # an extract verifies with a document key only
    jws.verify_detached(token, response.data, load_public_jwk(key))  # type: ignore[attr-defined]
    assert header["disclosure"]["k"] == 5
    assert header["disclosure"]["name"] == "cell-suppression-with-witnesses"


def test_a_ministry_gets_its_countrys_protected_counts_signed(world: World) -> None:
    response = extract(world, world.bearer("ministry", country="TJ"), group_by="destination")

    assert response.status_code == 200, response.json
    verified(world, response)
    document = response.json
    assert document["request"]["where"] == {"origin": "TJ"}
    assert document["method"]["k"] == 5
    examined = {
        c["destination"]: c["value"]
        for c in document["cells"]
        if c["measure"] == "examined" and c["period"] == "2026-Q3"
    }
    # 9 to KZ can be published only if 2 to RU cannot be derived from the total: both withheld
    assert examined["RU"] is None
    assert examined["all"] == 11 or examined["KZ"] is None
    hiv = [c for c in document["cells"] if c["measure"] == "hiv-reactive-screening"]
    assert all(c["value"] in (None, 0) for c in hiv)  # the one reactive result never shows
    assert all(c["value"] is None or c["value"] == 0 or c["value"] >= 5 for c in document["cells"])
    assert "X-Disclosure-Control" in response.headers
    assert json.loads(response.headers["X-Disclosure-Control"])["k"] == 5
    # the release is a public leaf of the transparency log: data version and digest only
    with world.ctx.db.read_session() as session:
        bodies = session.scalars(
            select(LogEntry.body).where(LogEntry.kind == "surveillance.release")
        ).all()
    assert [json.loads(b) for b in bodies] == [
        {
            "type": "surveillance.release",
            "ministry": "TJ",
            "data_version": jws.read_header(response.headers["X-Extract-Signature"])[
                "data_version"
            ],
            "sha256": hashlib.sha256(response.data).hexdigest(),
        }
    ]


def test_every_format_is_signed_and_parses_in_its_own_schema(world: World) -> None:
    headers = world.bearer("ministry", country="TJ")
    answers = {
        fmt: extract(world, headers, format=fmt, group_by="sex")
        for fmt in ("csv", "json", "fhir", "dhis2", "adx")
    }
    for fmt, response in answers.items():
        assert response.status_code == 200, (fmt, response.data[:300])
        verified(world, response)

    rows = list(csv.DictReader(io.StringIO(answers["csv"].data.decode())))
    assert answers["csv"].headers["Content-Type"].startswith("text/csv")
    assert {r["flag"] for r in rows} <= {"published", "suppressed"}
    total = next(
        r for r in rows if r["measure"] == "examined" and r["sex"] == "all" and r["origin"] == "TJ"
    )
    assert total["value"] == "11"

    bundle = Bundle.model_validate(answers["fhir"].json)
    assert bundle.type == "collection"
    assert {e.resource.get_resource_type() for e in bundle.entry} == {"MeasureReport"}

    values = answers["dhis2"].json["dataValues"]
    assert {"dataElement": "examined.origin", "value": "11"}.items() <= next(
        v for v in values if v["dataElement"] == "examined.origin"
    ).items()
    assert answers["dhis2"].json["orgUnit"] == "TJ"

    root = ElementTree.fromstring(answers["adx"].data)
    assert root.tag == "{urn:ihe:qrph:adx:2015}adx"
    assert root[0].get("period") == "2026-07-01/P3M"


def test_a_ministry_sees_only_its_own_country(world: World) -> None:
    kyrgyz = world.bearer("ministry", country="KG")
    mine = extract(world, kyrgyz)
    assert mine.status_code == 200
    examined = next(
        c for c in mine.json["cells"] if c["measure"] == "examined" and c["origin"] == "KG"
    )
    assert examined["value"] == 0  # none of the Tajik examinations shows up for Kyrgyzstan

    other = extract(world, kyrgyz, country="TJ")
    assert other.status_code == 403
    assert "own country" in other.json["message"]


@pytest.mark.parametrize("role", ["clinic", "employer", "authority", "accreditor"])
def test_other_roles_get_no_extract(world: World, role: str) -> None:
    kwargs = {"clinic_id": "TJ-DUS-0007"} if role == "clinic" else {"country": "TJ"}
    response = extract(world, world.bearer(role, **kwargs))
    assert response.status_code == 403
    assert response.json["message"] == f"the {role} role may not surveillance.read"


def test_no_token_no_extract(world: World) -> None:
    assert extract(world, {}).status_code == 401


# the month under way is never closed, and next year has not begun: whatever the day of the run
_TODAY = datetime.now(UTC).date()
THIS_MONTH = f"{_TODAY:%Y-%m}"
NEXT_YEAR = str(_TODAY.year + 1)


@pytest.mark.parametrize(
    ("params", "status", "names"),
    [
        ({"format": "xlsx"}, 422, "format"),
        ({"group_by": "religion"}, 422, "religion"),
        ({"measures": "examined,hiv"}, 422, "unknown measure 'hiv'"),
        ({"measures": "hiv-confirmed,hiv_confirmed"}, 422, "repeated"),
        ({"k": "2"}, 422, "k"),
        ({"k": "five"}, 422, "k"),
        ({"from": "2026-13", "to": "2026-13", "granularity": "month"}, 400, "2026-13"),
        ({"from": "2026-Q3", "to": "2026-Q1"}, 400, "before it starts"),
        ({"group_by": "sex,age_band"}, 400, "at most 2"),
        ({"granularity": "month", "from": THIS_MONTH, "to": THIS_MONTH}, 400, "not closed"),
        ({"granularity": "year", "from": NEXT_YEAR, "to": NEXT_YEAR}, 400, NEXT_YEAR),
    ],
)
def test_bad_requests_name_the_problem(
    world: World, params: dict[str, str], status: int, names: str
) -> None:
    response = extract(world, world.bearer("ministry", country="TJ"), **params)
    assert response.status_code == status, response.json
    assert names in json.dumps(response.json)


def test_measures_are_named_by_one_code_in_the_request_and_every_format(world: World) -> None:
    headers = world.bearer("ministry", country="TJ")
    params = {"group_by": "sex", "measures": "hiv-reactive-screening,examined"}
    answers = {
        fmt: extract(world, headers, format=fmt, **params) for fmt in ("json", "csv", "dhis2")
    }
    assert {r.status_code for r in answers.values()} == {200}
    assert all("Warning" not in r.headers for r in answers.values())
    assert {c["measure"] for c in answers["json"].json["cells"]} == {
        "hiv-reactive-screening",
        "examined",
    }
    assert "warnings" not in answers["json"].json
    rows = csv.DictReader(io.StringIO(answers["csv"].data.decode()))
    assert {r["measure"] for r in rows} == {"hiv-reactive-screening", "examined"}
    elements = {v["dataElement"].split(".")[0] for v in answers["dhis2"].json["dataValues"]}
    assert elements == {"hiv-reactive-screening", "examined"}


def test_the_former_measure_spelling_is_read_with_a_deprecation_warning(world: World) -> None:
    headers = world.bearer("ministry", country="TJ")
    current = extract(world, headers, measures="hiv-reactive-screening,examined")
    former = extract(world, headers, measures="hiv_reactive_screening,examined")

    assert former.status_code == 200, former.json
    assert former.headers.getlist("Warning") == [
        '299 - "measure code hiv_reactive_screening is deprecated; use hiv-reactive-screening"'
    ]
    assert former.json["warnings"] == [
        "measure code hiv_reactive_screening is deprecated; use hiv-reactive-screening"
    ]
    assert former.json["cells"] == current.json["cells"]  # the same counts, in the one code
    assert former.json["request"]["measures"] == ["hiv-reactive-screening", "examined"]
    verified(world, former)  # the warning is part of the signed body
    as_csv = extract(world, headers, measures="referrals_made", format="csv")
    assert as_csv.status_code == 200
    assert as_csv.headers["Warning"].endswith('use referrals-made"')
    assert {r["measure"] for r in csv.DictReader(io.StringIO(as_csv.data.decode()))} == {
        "referrals-made"
    }


def test_the_download_is_audited(world: World) -> None:
    from sqlalchemy import select

    from registry.audit.models import AuditEvent

    extract(world, world.bearer("ministry", country="TJ"), group_by="sex")
    with world.ctx.db.read_session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "surveillance.extract")
        ).all()
    assert len(events) == 1
    assert events[0].detail["where"] == {"origin": "TJ"}


@pytest.mark.committed
def test_the_export_command_writes_the_extract_and_its_signature(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(world.ctx.settings.keys_dir))
    monkeypatch.setenv("REGISTRY_DATABASE_URL", world.ctx.settings.database_url)
    out = tmp_path / "tj-q3.csv"

    result = CliRunner().invoke(
        main,
        ["surveillance", "export", "--from", "2026-Q3", "--country", "TJ", "-o", str(out)],
    )

    assert result.exit_code == 0, result.output
    served = extract(world, world.bearer("ministry", country="TJ"), format="csv")
    assert out.read_bytes() == served.data  # the same protected counts as the API
    token = (tmp_path / "tj-q3.csv.jws").read_text().strip()
    key = world.ctx.keystore.find(jws.read_header(token)["kid"], purpose="document")
    assert key is not None
    jws.verify_detached(token, out.read_bytes(), key.public_key)


@pytest.mark.committed
def test_the_dhis2_metadata_command_describes_what_the_dhis2_extract_references(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(world.ctx.settings.keys_dir))
    monkeypatch.setenv("REGISTRY_DATABASE_URL", world.ctx.settings.database_url)
    out = tmp_path / "metadata.json"

    result = CliRunner().invoke(
        main,
        [
            *("surveillance", "dhis2-metadata", "--org-unit-id", "Xb4Tq0uP9aZ"),
            *("--country", "UZ", "-o", str(out)),
        ],
    )

    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    options = {o["code"] for o in document["categoryOptions"]}
    assert {"origin.TJ", "origin.UZ", "destination.KZ", "destination.RU"} <= options
    assert {"destination.none", "destination.UZ"} <= options
    assert all(s["organisationUnits"] == [{"id": "Xb4Tq0uP9aZ"}] for s in document["dataSets"])
    served = extract(
        world, world.bearer("ministry", country="TJ"), format="dhis2", group_by="destination"
    ).json
    elements = {e["code"] for e in document["dataElements"]}
    combos = {c["code"] for c in document["categoryOptionCombos"]} | {"default"}
    assert served["dataSet"] in {s["code"] for s in document["dataSets"]}
    assert served["dataValues"]
    for value in served["dataValues"]:
        assert value["dataElement"] in elements
        assert value["categoryOptionCombo"] in combos

    refused = CliRunner().invoke(main, ["surveillance", "dhis2-metadata", "--org-unit-id", "1abc"])
    assert refused.exit_code == 2
    assert "not a DHIS2 UID" in refused.output


def test_the_pattern_is_computed_once_per_data_version_and_shared(world: World) -> None:
    from sqlalchemy import select

    from registry.surveillance.models import SurveillanceProtection

    headers = world.bearer("ministry", country="TJ")
    first = extract(world, headers, group_by="sex")
    service.PROTECTED.clear()  # another worker: nothing in its memory
    again = extract(world, headers, group_by="sex")
    assert again.json["cells"] == first.json["cells"]
    assert again.headers["X-Data-Version"] == first.headers["X-Data-Version"]
    with world.ctx.db.read_session() as session:
        stored = session.scalars(select(SurveillanceProtection)).all()
    # released: the version's pattern is now the first layer of the year's release ledger
    version = first.headers["X-Data-Version"]
    assert [(row.data_version, row.k) for row in stored] == [(f"{version}#0", 5)]

    # a late record for a month already released, while the year is open, waits for the
    # year's revision: the release stays as it was, and no pattern is needed for it
    submit(world, number="2026-Q3-late", examined_on=date(2026, 9, 28), passport="7100000001")
    late = extract(world, headers, group_by="sex")
    if service.closed_through(datetime.now(UTC)).year > 2026:
        # run on a day after 2026: the year is complete, the late record is its revision layer
        assert late.status_code == 202
        protect(world)
        late = extract(world, headers, group_by="sex")
        assert late.status_code == 200
        with world.ctx.db.read_session() as session:
            layers = session.scalars(select(SurveillanceLayer.data_version)).all()
        assert layers == [version, late.headers["X-Data-Version"]]
        return
    assert late.status_code == 200
    assert late.headers["X-Data-Version"] == version
    assert late.json["cells"] == first.json["cells"]
    with world.ctx.db.read_session() as session:
        layers = session.scalars(select(SurveillanceLayer.data_version)).all()
    assert layers == [version]


@pytest.mark.committed
def test_the_protect_command_stores_the_pattern_extracts_then_read(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select

    from registry.surveillance.models import SurveillanceProtection

    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(world.ctx.settings.keys_dir))
    monkeypatch.setenv("REGISTRY_DATABASE_URL", world.ctx.settings.database_url)

    result = CliRunner().invoke(main, ["surveillance", "protect", "--year", "2026"])

    assert result.exit_code == 0, result.output
    with world.ctx.db.read_session() as session:
        stored = session.scalars(select(SurveillanceProtection.data_version)).all()
    assert len(stored) == 1 and stored[0].startswith("2026:")
    assert f"2026: pattern for data version {stored[0]} at k=5" in result.output
    served = extract(world, world.bearer("ministry", country="TJ"))
    assert served.headers["X-Data-Version"] == stored[0]


def test_an_extract_asked_before_its_pattern_exists_answers_202_and_computes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select

    from registry.audit.models import AuditEvent
    from registry.surveillance.models import SurveillanceProtection

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a web request computed a suppression pattern")

    monkeypatch.setattr(service, "protect", never)
    submit(world, number="2026-Q3-late", examined_on=date(2026, 8, 28), passport="7100000002")
    service.PROTECTED.clear()
    headers = world.bearer("ministry", country="TJ")

    pending = extract(world, headers, group_by="sex")
    again = extract(world, headers, group_by="sex")

    assert pending.status_code == again.status_code == 202
    assert pending.headers["Retry-After"] == str(service.RETRY_AFTER_SECONDS)
    body = pending.json
    assert body["error"] == "protection_pending"
    assert body["k"] == 5 and body["retry_after"] == service.RETRY_AFTER_SECONDS
    assert body["data_version"].startswith("2026:")
    assert "being computed" in body["message"]
    assert "cells" not in body
    with world.ctx.db.read_session() as session:
        rows = session.execute(
            select(SurveillanceProtection.data_version, SurveillanceProtection.cells)
        ).all()
        released = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "surveillance.extract")
        ).all()
    requests = [version for version, cells in rows if cells == 0]
    assert requests == [body["data_version"]]  # one request, left for the worker
    assert released == []

    monkeypatch.undo()
    done = service.protect_outstanding(world.ctx.db, now=datetime.now(UTC))
    assert [(d.year, d.k, d.version) for d in done if d.year == 2026] == [
        (2026, 5, body["data_version"])
    ]
    ready = extract(world, headers, group_by="sex")
    assert ready.status_code == 200
    assert ready.headers["X-Data-Version"] == body["data_version"]


def test_a_threshold_nobody_keeps_ready_is_computed_once_asked(world: World) -> None:
    headers = world.bearer("ministry", country="TJ")
    assert extract(world, headers, k="7").status_code == 202

    done = service.protect_outstanding(world.ctx.db, now=datetime.now(UTC), ks=())

    assert [(d.year, d.k) for d in done] == [(2026, 7)]
    answer = extract(world, headers, k="7")
    assert answer.status_code == 200
    assert answer.json["method"]["k"] == 7


@pytest.mark.committed
def test_the_worker_command_computes_what_requests_left_for_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(world.ctx.settings.keys_dir))
    monkeypatch.setenv("REGISTRY_DATABASE_URL", world.ctx.settings.database_url)
    headers = world.bearer("ministry", country="TJ")
    assert extract(world, headers, k="6").status_code == 202

    result = CliRunner().invoke(main, ["surveillance", "worker", "--once", "--k", "5"])

    assert result.exit_code == 0, result.output
    assert "2026: pattern for data version 2026:" in result.output
    assert "at k=6" in result.output
    assert extract(world, headers, k="6").status_code == 200
    again = CliRunner().invoke(main, ["surveillance", "worker", "--once", "--k", "5"])
    assert again.exit_code == 0 and "pattern" not in again.output  # nothing left to do


def test_a_record_withdrawn_after_a_release_leaves_the_release_as_it_was(world: World) -> None:
    """A layer cannot take a released record back: the year is served as last released."""
    from tests.certificates.builders import withdraw

    headers = world.bearer("ministry", country="TJ")
    gone = submit(
        world, number="2026-Q3-gone", examined_on=date(2026, 8, 20), passport="7200000001"
    )
    protect(world)
    first = extract(world, headers, group_by="destination")
    assert first.status_code == 200
    withdraw(world, gone.examination.id)
    again = extract(world, headers, group_by="destination")
    assert again.status_code == 200
    assert again.headers["X-Data-Version"] == first.headers["X-Data-Version"]
    assert again.json["cells"] == first.json["cells"]
    examined = [c for c in again.json["cells"] if c["measure"] == "examined"]
    assert {c["value"] for c in examined if c["destination"] == "all"} == {12}  # as released


def test_a_month_closed_since_the_last_release_is_added_as_a_layer_late_records_wait(
    world: World,
) -> None:
    """Released with September closed; then October closes, with a record late for August."""
    from tests.support import OPERATOR

    def release(now: datetime) -> dict[str, object]:
        query = service.ExtractQuery("quarter", "2026-Q3", "2026-Q3")
        with world.ctx.db.unit_of_work() as uow:
            done = service.build_extract(uow, principal=OPERATOR, query=query, now=now)
            uow.commit()
        assert done.version.startswith(f"2026:{now.month - 1}:")
        return {
            "version": done.version,
            "q3": next(
                c["value"] for c in json.loads(done.body)["cells"] if c["measure"] == "examined"
            ),
        }

    def compute(now: datetime) -> None:
        with world.ctx.db.unit_of_work() as uow:
            service.protected_year(uow.session, year=2026, k=5, now=now, compute=True)
            uow.commit()

    october, november = datetime(2026, 10, 15, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC)
    compute(october)
    first = release(october)
    assert first["q3"] == 11
    submit(world, number="2026-10-new", examined_on=date(2026, 10, 5), passport="7300000001")
    submit(world, number="2026-08-late", examined_on=date(2026, 8, 25), passport="7300000002")
    compute(november)
    second = release(november)
    with world.ctx.db.read_session() as session:
        stored = service.data_version(session, year=2026, now=november)
        layers = session.scalars(
            select(SurveillanceLayer.closed_months).order_by(SurveillanceLayer.seq)
        ).all()
    assert layers == [9, 10]  # October is the second layer
    assert second["version"] != stored  # the late record is not in the release's counts
    assert second["q3"] == 11  # the third quarter as released, not 12
