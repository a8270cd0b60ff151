"""The transparency log end to end: leaves, checkpoints, tiles, proofs, witnesses, drills.

Proofs are checked against the RFC 6962 definitions in tests/transparency/reference.py,
computed over the entries fetched from the log's own entry bundles.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, select, text, update

from registry.audit.models import AuditEvent
from registry.audit.service import SystemActor, audit_leaf, record
from registry.certificates.models import Certificate, CertificateRevocation
from registry.crypto.merkle import TileBuilder, leaf_hash, verify_consistency, verify_inclusion
from registry.crypto.notes import Checkpoint, Verifier, open_checkpoint
from registry.examinations.integrity import check_bundles
from registry.examinations.models import ExaminationVersion
from registry.transparency import client as log_client
from registry.transparency import sequencer, service
from registry.transparency.models import LogCheckpoint, LogEntry, LogState, LogTile
from registry.transparency.service import card_leaf
from registry.transparency.verify import verify_log
from registry.web import RegistryContext
from tests.certificates.builders import certified, holder_secret, submit, withdraw
from tests.support import World
from tests.transparency import reference


@pytest.fixture(autouse=True)
def _clinic(world: World) -> None:
    world.clinic("TJ-DUS-0007")


def _sequence(ctx: RegistryContext) -> sequencer.Round:
    return sequencer.integrate_all(ctx.db, service.log_signer(ctx.settings, ctx.keystore))


def _fetcher(client: FlaskClient) -> log_client.Fetch:
    def fetch(path: str) -> bytes:
        response = client.get(f"/log/{path}")
        if response.status_code != 200:
            raise log_client.Refused(f"/log/{path}: HTTP {response.status_code}")
        return response.get_data()

    return fetch


def _verify(ctx: RegistryContext, witnessed: list[Checkpoint] = ()) -> list[str]:  # type: ignore[assignment]
    log_key = service.log_signer(ctx.settings, ctx.keystore).verifier
    with ctx.db.read_session() as session:
        report = verify_log(session, log_key=log_key, witnessed=witnessed)
    with ctx.db.read_session() as session:
        problems, _ = check_bundles(session, ctx.cipher)
    return report.problems + problems


def _bundle_entries(raw: bytes) -> list[bytes]:
    found, position = [], 0
    while position < len(raw):
        (length,) = struct.unpack(">H", raw[position : position + 2])
        found.append(raw[position + 2 : position + 2 + length])
        position += 2 + length
    return found


def _all_entries(client: FlaskClient, size: int) -> list[bytes]:
    entries: list[bytes] = []
    for index in range((size + 255) // 256):
        width = min(256, size - index * 256)
        suffix = "" if width == 256 else f".p/{width}"
        response = client.get(f"/log/tile/entries/{index:03d}{suffix}")
        assert response.status_code == 200
        entries += _bundle_entries(response.get_data())
    return entries


_NUMBERS = iter(range(1, 10_000))


def _issued(world: World) -> dict[str, Certificate]:
    certificates = certified(submit(world, number=f"2026-{next(_NUMBERS):06d}"))
    assert certificates
    return certificates


@pytest.mark.postgres
def test_what_happens_is_logged_and_proved_with_public_files_only(
    world: World, client: FlaskClient
) -> None:
    certificates = _issued(world)
    assert _sequence(world.ctx).integrated > 0
    log_key = Verifier.parse(client.get("/log/key").get_data(as_text=True).strip())
    checkpoint, _ = open_checkpoint(client.get("/log/checkpoint").get_data(), log_key)
    entries = _all_entries(client, checkpoint.size)
    assert len(entries) == checkpoint.size
    assert reference.mth(entries) == checkpoint.root

    issued = [json.loads(e) for e in entries if json.loads(e)["type"] == "certificate.issued"]
    assert {e["certificate"] for e in issued} == {c.id for c in certificates.values()}
    # public ids and codes only: nobody's name, birth date, document or result
    assert set(issued[0]) == {
        "type",
        "certificate",
        "kid",
        "rid",
        "destination",
        "purpose",
        "valid_from",
        "valid_until",
        "clinic",
        "country",
        "ruleset_version",
        "at",
    }
    audits = [json.loads(e) for e in entries if json.loads(e)["type"] == "audit"]
    assert audits and all(set(a) == {"type", "commitment"} for a in audits)

    index = next(i for i, e in enumerate(entries) if json.loads(e)["type"] == "certificate.issued")
    answer = client.get(f"/log/proof/inclusion?leaf_hash={leaf_hash(entries[index]).hex()}")
    assert answer.status_code == 200
    proof = [base64.b64decode(h) for h in answer.json["hashes"]]
    assert answer.json["leaf_index"] == index
    assert proof == reference.path(index, entries)
    verify_inclusion(leaf_hash(entries[index]), index, checkpoint.size, proof, checkpoint.root)


@pytest.mark.postgres
def test_consistency_proofs_and_tiles_between_two_checkpoints(
    world: World, client: FlaskClient
) -> None:
    _issued(world)
    first = _sequence(world.ctx).size
    _issued(world)
    second = _sequence(world.ctx).size
    assert second > first
    entries = _all_entries(client, second)
    answer = client.get(f"/log/proof/consistency?first={first}&second={second}")
    proof = [base64.b64decode(h) for h in answer.json["hashes"]]
    assert proof == reference.proof(first, entries)
    verify_consistency(first, second, proof, reference.mth(entries[:first]), reference.mth(entries))
    tile = client.get(f"/log/tile/0/000.p/{second}")
    assert tile.get_data() == b"".join(leaf_hash(e) for e in entries)
    assert client.get(f"/log/tile/0/000.p/{second + 1}").status_code == 404
    assert client.get("/log/tile/0/x1/000").status_code == 404
    assert client.get("/log/proof/consistency?first=2&second=1").status_code == 400
    bad = client.get("/log/proof/inclusion?leaf_hash=zz")
    assert bad.status_code == 400 and "leaf_hash" in bad.json["message"]


def test_an_entry_is_public_once_sequenced_and_a_rolled_back_one_never(world: World) -> None:
    ctx = world.ctx
    before = _sequence(ctx).size
    with ctx.db.unit_of_work() as uow:
        lost = record(uow.session, actor=SystemActor(), action="test.rolled-back")
        # not committed: the unit of work rolls back
    with ctx.db.unit_of_work() as uow:
        kept = record(uow.session, actor=SystemActor(), action="test.kept")
        uow.commit()
    assert sequencer.backlog(ctx.db)[0] == 1
    assert _sequence(ctx).size == before + 1
    assert sequencer.backlog(ctx.db)[0] == 0
    with ctx.db.read_session() as session:
        leaves = {
            bytes(h): seq for h, seq in session.execute(select(LogEntry.leaf_hash, LogEntry.seq))
        }
    assert leaves[kept.leaf_hash] == before
    assert lost.leaf_hash not in leaves
    assert _verify(ctx) == []


@pytest.mark.postgres
@pytest.mark.committed
def test_two_requests_write_the_log_at_once_without_a_shared_lock(world: World) -> None:
    """Both transactions hold their entries uncommitted at the same time; neither waits."""
    ctx = world.ctx
    if ctx.db.dialect != "postgresql":
        pytest.skip("SQLite has one write lock per database file: writers queue by design")
    first, second = ctx.db.unit_of_work(), ctx.db.unit_of_work()
    with first, second:
        for uow in (first, second):
            uow.session.execute(text("SET LOCAL lock_timeout = '2s'"))
        a = record(first.session, actor=SystemActor(), action="certificate.verify")
        b = record(second.session, actor=SystemActor(), action="certificate.verify")
        second.commit()
        first.commit()
    _sequence(ctx)
    with ctx.db.read_session() as session:
        order = session.scalars(select(LogEntry.leaf_hash).order_by(LogEntry.seq)).all()
    assert {bytes(h) for h in order[-2:]} == {a.leaf_hash, b.leaf_hash}
    assert _verify(ctx) == []


# -- tamper drills: each caught by `registry log verify` or by a witness -----------------------
def _witness(tmp_path: Path, client: FlaskClient, name: str = "w1") -> Checkpoint:
    state = log_client.WitnessState(tmp_path / name)
    checkpoint, _ = log_client.witness(
        state, _fetcher(client), None, name=f"witness.test/{name}", now=1_800_000_000
    )
    return checkpoint


def _logged_world(world: World) -> dict[str, Certificate]:
    certificates = _issued(world)
    _issued(world)
    _sequence(world.ctx)
    assert _verify(world.ctx) == []
    return certificates


@pytest.mark.postgres
def test_drill_delete_the_tail(world: World, tmp_path: Path, client: FlaskClient) -> None:
    _logged_world(world)
    seen = _witness(tmp_path, client)
    with world.ctx.db.unit_of_work() as uow:
        last = uow.session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
        uow.session.execute(delete(AuditEvent).where(AuditEvent.id >= (last or 0) - 1))
        uow.commit()
    problems = _verify(world.ctx)
    assert sum("commits to an audit event that is gone" in p for p in problems) == 2
    # the insider also cuts the log's tail: the witness's checkpoint names the truncation
    with world.ctx.db.unit_of_work() as uow:
        uow.session.execute(delete(LogEntry).where(LogEntry.seq >= seen.size - 2))
        uow.commit()
    assert any("log jumps" in p or "truncated" in p for p in _verify(world.ctx, [seen]))


@pytest.mark.postgres
def test_drill_delete_everything(world: World, tmp_path: Path, client: FlaskClient) -> None:
    _logged_world(world)
    seen = _witness(tmp_path, client)
    with world.ctx.db.unit_of_work() as uow:
        for table in (AuditEvent, LogEntry, LogTile, LogCheckpoint, LogState):
            uow.session.execute(delete(table))
        uow.commit()
    problems = _verify(world.ctx, [seen])
    assert any(f"a witness saw {seen.size} leaves; the database holds 0" in p for p in problems)
    _sequence(world.ctx)  # a fresh, empty log signed anew
    with pytest.raises(log_client.Refused, match="truncated"):
        _witness(tmp_path, client)


@pytest.mark.postgres
def test_drill_rewrite_a_row_and_everything_after_it(
    world: World, tmp_path: Path, client: FlaskClient
) -> None:
    """The insider has the database and even the log's key; the witness still notices."""
    ctx = world.ctx
    _logged_world(world)
    seen = _witness(tmp_path, client)
    with ctx.db.unit_of_work() as uow:
        session = uow.session
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.id).limit(1)).one()
        event.detail = {**event.detail, "rewritten": True}
        new_leaf = audit_leaf(event)
        entry = session.scalars(select(LogEntry).where(LogEntry.leaf_hash == event.leaf_hash)).one()
        event.leaf_hash = entry.leaf_hash = new_leaf.hash
        entry.body = new_leaf.body
        session.flush()
        # everything after it recomputed: tiles and a checkpoint signed again with the key
        hashes = [
            bytes(h) for h in session.scalars(select(LogEntry.leaf_hash).order_by(LogEntry.seq))
        ]
        builder = TileBuilder(0, lambda level, index: b"")
        for leaf in hashes:
            builder.append(leaf)
        session.execute(delete(LogTile))
        session.execute(delete(LogCheckpoint))
        for (level, index), data in builder.tiles.items():
            session.add(LogTile(level=level, idx=index, hashes=bytes(data)))
        signer = service.log_signer(ctx.settings, ctx.keystore)
        root = builder.tree().root()
        note = signer.sign(Checkpoint(signer.name, len(hashes), root).text())
        session.add(LogCheckpoint(size=len(hashes), root=root, note=note, created_at=event.at))
        uow.commit()
    assert _verify(ctx) == []  # self-consistent: only an outside view can tell
    assert any("another tree" in p for p in _verify(ctx, [seen]))
    with pytest.raises(log_client.Refused, match="fork"):
        _witness(tmp_path, client)


@pytest.mark.postgres
def test_drill_revive_a_revoked_certificate(world: World) -> None:
    certificates = _issued(world)
    submission_id = next(iter(certificates.values())).examination_id
    withdraw(world, submission_id)
    _sequence(world.ctx)
    revived = next(iter(certificates.values())).id
    with world.ctx.db.unit_of_work() as uow:
        uow.session.execute(
            update(Certificate).where(Certificate.id == revived).values(status="valid")
        )
        uow.session.execute(
            delete(CertificateRevocation).where(CertificateRevocation.certificate_id == revived)
        )
        uow.commit()
    problems = _verify(world.ctx)
    assert f"certificate {revived} is valid in the database but revoked in the log" in " ".join(
        problems
    )
    assert any("missing from the revocation list" in p for p in problems)


@pytest.mark.postgres
def test_drill_swap_two_stored_bundles(world: World) -> None:
    _logged_world(world)
    with world.ctx.db.unit_of_work() as uow:
        first, second = uow.session.scalars(
            select(ExaminationVersion).order_by(ExaminationVersion.id).limit(2)
        ).all()
        first.sealed_bundle, second.sealed_bundle = second.sealed_bundle, first.sealed_bundle
        uow.commit()
    problems = _verify(world.ctx)
    assert sum("does not open (swapped or corrupted)" in p for p in problems) == 2


@pytest.mark.postgres
def test_drill_a_fork_shown_to_two_witnesses(
    world: World, tmp_path: Path, client: FlaskClient
) -> None:
    """One witness saw the true tree; the other is shown a rewritten one; they disagree."""
    ctx = world.ctx
    _logged_world(world)
    honest = _witness(tmp_path, client, "honest")
    with ctx.db.unit_of_work() as uow:  # the fork: the same size, the last leaf replaced
        last = uow.session.scalars(select(LogEntry).order_by(LogEntry.seq.desc()).limit(1)).one()
        uow.session.execute(delete(LogTile))
        uow.session.execute(delete(LogCheckpoint))
        uow.session.execute(delete(LogEntry).where(LogEntry.id == last.id))
        uow.session.execute(update(LogState).values(size=0))
        uow.session.execute(update(LogEntry).values(seq=None))
        record(uow.session, actor=SystemActor(), action="fork.other-leaf")
        uow.commit()
    _sequence(ctx)
    shown = _witness(tmp_path, client, "misled")  # a new witness accepts what it is shown
    assert shown.size == honest.size and shown.root != honest.root
    with pytest.raises(log_client.Refused, match="fork"):
        _witness(tmp_path, client, "honest")
    assert any("another tree" in p for p in _verify(ctx, [honest]))


def test_cosignatures_are_stored_and_served_only_from_registered_witnesses(
    world: World, tmp_path: Path, client: FlaskClient
) -> None:
    _logged_world(world)
    state = log_client.WitnessState(tmp_path / "w")
    posted: list[bytes] = []
    checkpoint, cosigned = log_client.witness(
        state, _fetcher(client), lambda _p, body: posted.append(body), name="witness.test/w"
    )
    refused = client.post("/log/cosignatures", data=posted[0])
    assert refused.status_code == 400 and "registered witness" in refused.json["message"]
    vkey = state.signer("witness.test/w").verifier.vkey()
    with world.ctx.db.unit_of_work() as uow:
        service.add_witness(uow, vkey=vkey)
        uow.commit()
    assert client.post("/log/cosignatures", data=posted[0]).status_code == 200
    served = client.get("/log/checkpoint").get_data(as_text=True)
    assert served == cosigned
    forged = cosigned.replace(
        base64.b64encode(checkpoint.root).decode(), base64.b64encode(bytes(32)).decode()
    )
    assert client.post("/log/cosignatures", data=forged).status_code in (400, 409)


def _unused(_: Any) -> None:  # keep the helper imports honest for the type checker
    del _


@pytest.mark.parametrize(
    ("lang", "adding", "entry"), [("en", "being added", "entry"), ("ru", "добавляется", "запись")]
)
def test_the_holder_page_names_each_certificates_leaf_once_sequenced(
    world: World, client: FlaskClient, lang: str, adding: str, entry: str
) -> None:
    certificate = next(iter(_issued(world).values()))
    secret = holder_secret(world, certificate)
    before = client.get(f"/h/{secret}?lang={lang}").get_data(as_text=True)
    assert adding in before
    _sequence(world.ctx)
    with world.ctx.db.read_session() as session:
        leaf = card_leaf(session, certificate.id)
    assert leaf is not None and leaf["leaf_index"] is not None
    after = client.get(f"/h/{secret}?lang={lang}").get_data(as_text=True)
    assert f"/log/proof/inclusion?leaf_hash={leaf['leaf_hash']}" in after
    assert f"{entry} {leaf['leaf_index']}" in after
    proof = client.get(f"/log/proof/inclusion?leaf_hash={leaf['leaf_hash']}")
    assert proof.status_code == 200 and proof.json["leaf_index"] == leaf["leaf_index"]


@pytest.mark.postgres
def test_a_verification_written_in_one_statement_is_a_leaf_the_log_verifies(
    world: World, client: FlaskClient
) -> None:
    from tests.certificates.builders import load_rulesets
    from tests.verification.helpers import qr_of

    load_rulesets(world.app)
    issued = _issued(world)["KZ"]
    answer = client.post("/api/v1/verify", json={"qr": qr_of(world, issued)})
    assert answer.status_code == 200 and answer.json["result"] == "valid"
    with world.ctx.db.read_session() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "certificate.verify")
        ).one()
        entry = session.scalars(select(LogEntry).where(LogEntry.leaf_hash == event.leaf_hash)).one()
    # the receipt names the leaf the statement wrote, and the leaf commits to the row
    assert answer.json["log_leaf"] == event.leaf_hash.hex() == leaf_hash(entry.body).hex()
    assert entry.body == audit_leaf(event).body
    assert _sequence(world.ctx).integrated > 0
    assert _verify(world.ctx) == []
