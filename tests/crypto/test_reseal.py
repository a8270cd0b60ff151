"""`registry seal reseal`: values sealed before padding are sealed again, once, in batches."""

from __future__ import annotations

import os
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import inspect, select, update

from registry.cli import main
from registry.crypto.encryption import key_id, sealed_length
from registry.crypto.reseal import SealedColumn, reseal_batch
from registry.schema import sealed_columns
from tests.certificates.builders import submit
from tests.crypto.test_sealed_lengths import SEALED_COLUMNS
from tests.support import World
from tests.verification.helpers import publish


def _primary_key(world: World) -> bytes:
    settings = world.ctx.settings
    return settings.data_keys[0] if settings.data_keys else world.ctx.keystore.secret("data")


def _values(world: World) -> dict[tuple[str, Any], tuple[bytes, bytes]]:
    """Every sealed value: (column, row) -> (stored, opened)."""
    found = {}
    with world.ctx.db.unit_of_work() as uow:
        for column in sealed_columns():
            key = inspect(column.entity).primary_key[0]
            for row in uow.session.scalars(select(column.entity)):
                stored = getattr(row, column.attribute)
                if stored is not None:
                    opened = uow.cipher.decrypt(stored, context=column.context(row))
                    found[(column.name, getattr(row, key.name))] = (stored, opened)
    return found


def _seal_as_before_padding(world: World) -> int:
    """Rewrite every sealed value in format 1 (unpadded), as the registry stored it before."""
    key = _primary_key(world)
    rewritten = 0
    with world.ctx.db.unit_of_work() as uow:
        for column in sealed_columns():
            primary = inspect(column.entity).primary_key[0]
            for row in list(uow.session.scalars(select(column.entity))):
                stored = getattr(row, column.attribute)
                if stored is None:
                    continue
                context = column.context(row)
                plain = uow.cipher.decrypt(stored, context=context)
                nonce = os.urandom(12)
                old = b"\x01" + key_id(key) + nonce + AESGCM(key).encrypt(nonce, plain, context)
                uow.session.execute(
                    update(column.entity)
                    .where(primary == getattr(row, primary.name))
                    .values({column.attribute: old})
                    .execution_options(synchronize_session=False)
                )
                rewritten += 1
        uow.commit()
    return rewritten


def _reseal(world: World, column: SealedColumn, *, size: int, batches: int | None = None) -> int:
    resealed, after, run = 0, None, 0
    while batches is None or run < batches:
        with world.ctx.db.unit_of_work() as uow:
            done = reseal_batch(uow.session, uow.cipher, column, after=after, size=size)
            uow.commit()
        resealed, run = resealed + done.resealed, run + 1
        if done.after is None:
            break
        after = done.after
    return resealed


def _two_examinations(world: World) -> None:
    publish(world)  # a custodial clinic key too
    submit(world, number="RS-1", outcomes={"chest-xray": "normal"}, passport="P7000001")
    submit(world, number="RS-2", outcomes={"chest-xray": "abnormal-tb"}, passport="P7000002")


def test_every_sealed_column_is_resealed() -> None:
    assert sorted(c.name for c in sealed_columns()) == SEALED_COLUMNS


def test_values_sealed_before_padding_are_sealed_again_once_and_open_the_same(
    world: World,
) -> None:
    _two_examinations(world)
    before = _values(world)
    assert _seal_as_before_padding(world) == len(before)
    old_outcomes = {
        len(stored) for (name, _), (stored, _) in _values(world).items() if "outcome" in name
    }
    assert len(old_outcomes) > 1  # unpadded, "normal" and "abnormal-tb" tell themselves apart

    columns = sealed_columns()
    # interrupted after one batch of two rows of the first column, then run again from the start
    assert _reseal(world, columns[0], size=2, batches=1) == 2
    resealed = sum(_reseal(world, column, size=2) for column in columns)
    assert resealed == len(before) - 2

    after = _values(world)
    assert {k: opened for k, (_, opened) in after.items()} == {
        k: opened for k, (_, opened) in before.items()
    }
    for (name, _), (stored, opened) in after.items():
        assert stored[:1] == b"\x02", name
        assert len(stored) == sealed_length(len(opened)), name
    new_outcomes = {len(stored) for (name, _), (stored, _) in after.items() if "outcome" in name}
    assert new_outcomes == {sealed_length(0)}
    assert sum(_reseal(world, column, size=2) for column in columns) == 0  # idempotent


def test_a_value_that_does_not_open_is_named_and_left_alone(world: World) -> None:
    _two_examinations(world)
    _seal_as_before_padding(world)
    column = next(c for c in sealed_columns() if c.name == "test_results.sealed_outcome")
    with world.ctx.db.unit_of_work() as uow:
        first = uow.session.scalars(select(column.entity).order_by(column.entity.id)).first()
        broken = first.sealed_outcome[:-1] + bytes([first.sealed_outcome[-1] ^ 1])
        first.sealed_outcome = broken
        uow.commit()
        broken_id = first.id
    with world.ctx.db.unit_of_work() as uow:
        done = reseal_batch(uow.session, uow.cipher, column, after=None, size=1000)
        uow.commit()
    assert done.unreadable == (str(broken_id),)
    assert done.resealed == done.looked_at - 1
    with world.ctx.db.read_session() as session:
        assert session.get(column.entity, broken_id).sealed_outcome == broken


@pytest.mark.committed
def test_the_reseal_command_shows_progress_and_is_idempotent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(world.ctx.settings.keys_dir))
    monkeypatch.setenv("REGISTRY_DATABASE_URL", world.ctx.settings.database_url)
    _two_examinations(world)
    _seal_as_before_padding(world)
    with world.ctx.db.read_session() as session:
        results = len(session.scalars(select(sealed_columns()[-1].entity)).all())
        holders = len(session.scalars(select(sealed_columns()[0].entity)).all())

    first = CliRunner().invoke(main, ["seal", "reseal", "--batch", "3"])
    assert first.exit_code == 0, first.output
    assert (
        f"certificates.sealed_holder: {holders}/{holders} looked at, {holders} re-sealed\n"
        in first.output
    )
    assert first.output.count(f"certificates.sealed_holder: {holders}/{holders}") == 1
    assert f"test_results.sealed_outcome: 3/{results} looked at, 3 re-sealed" in first.output
    assert (
        f"test_results.sealed_outcome: {results}/{results} looked at, {results} re-sealed"
        in first.output
    )
    again = CliRunner().invoke(main, ["seal", "reseal"])
    assert again.exit_code == 0, again.output
    assert f"test_results.sealed_outcome: {results}/{results} looked at, 0 re-sealed" in (
        again.output
    )
    assert " 0 re-sealed" in again.output and "1 re-sealed" not in again.output
