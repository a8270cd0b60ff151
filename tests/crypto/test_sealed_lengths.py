"""A sealed value's length tells only its bucket: never an outcome, a name or a key."""

from __future__ import annotations

import os
from collections import defaultdict

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import LargeBinary, select

from registry.crypto.encryption import DataCipher, bucket_size, key_id, sealed_length
from registry.schema import metadata
from tests.certificates.builders import submit
from tests.support import World
from tests.verification.helpers import publish

KEY = b"k" * 32
CIPHER = DataCipher([KEY])
# every sealed column of the schema (a LargeBinary column that is not sealed is listed apart)
NOT_SEALED = {
    "surveillance_protections.status",  # a compressed suppression pattern, no person
    "surveillance_layers.cells",  # released microcell counts, like surveillance_counts
    # the transparency log: public hashes and public entries (ids and codes, never a person)
    "audit_events.leaf_hash",
    "log_entries.body",
    "log_entries.leaf_hash",
    "log_tiles.hashes",
    "log_checkpoints.root",
}
SEALED_COLUMNS = sorted(
    f"{table.name}.{column.name}"
    for table in metadata.sorted_tables
    for column in table.columns
    if isinstance(column.type, LargeBinary) and f"{table.name}.{column.name}" not in NOT_SEALED
)
LENGTHS = st.integers(min_value=0, max_value=300_000)


def test_the_sealed_columns_are_the_ones_we_know() -> None:
    assert SEALED_COLUMNS == [
        "certificates.sealed_holder",
        "certificates.sealed_jws",
        "examination_versions.sealed_bundle",
        "persons.sealed_identity",
        "persons.sealed_photo",
        "signing_keys.sealed_private_jwk",
        "surveillance_tallies.sealed",
        "test_results.sealed_outcome",
    ]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(first=LENGTHS, second=LENGTHS, context=st.binary(max_size=40))
def test_two_plaintexts_seal_to_the_same_length_exactly_when_they_share_a_bucket(
    first: int, second: int, context: bytes
) -> None:
    a = CIPHER.encrypt(os.urandom(first), context=context)
    b = CIPHER.encrypt(b"\x00" * second, context=context)
    assert len(a) == sealed_length(first) and len(b) == sealed_length(second)
    assert (len(a) == len(b)) == (bucket_size(first) == bucket_size(second))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(length=LENGTHS)
def test_buckets_are_powers_of_two_then_whole_64k_steps_and_waste_at_most_half(
    length: int,
) -> None:
    size = bucket_size(length)
    assert size >= length + 4
    if size <= 64 * 1024:
        assert size >= 64 and size & (size - 1) == 0
    else:
        assert size % (64 * 1024) == 0
    assert size - (length + 4) < max(size // 2 + 1, 64 * 1024, 64)


def test_every_outcome_of_a_test_seals_to_one_length() -> None:
    outcomes = ["normal", "abnormal-suggestive-of-tb", "abnormal-other", "abnormal-tb"]
    outcomes += ["positive", "negative", "indeterminate", "detected", "not-detected"]
    lengths = {len(CIPHER.encrypt(o.encode(), context=b"result:x:1:chest-xray")) for o in outcomes}
    assert lengths == {sealed_length(0)}


def test_a_value_sealed_before_padding_still_opens() -> None:
    nonce = os.urandom(12)
    old = b"\x01" + key_id(KEY) + nonce + AESGCM(KEY).encrypt(nonce, b"normal", b"result:1")
    assert len(old) == 39  # how "normal" used to be stored
    assert CIPHER.decrypt(old, context=b"result:1") == b"normal"
    assert CIPHER.needs_rotation(old)


def test_a_padded_value_cannot_be_relabelled_as_unpadded() -> None:
    sealed = CIPHER.encrypt(b"normal", context=b"result:1")
    from registry.crypto.encryption import DecryptionError

    with pytest.raises(DecryptionError, match="altered"):
        CIPHER.decrypt(b"\x01" + sealed[1:], context=b"result:1")


def test_stored_values_of_every_sealed_column_differ_in_length_only_by_bucket(
    world: World,
) -> None:
    publish(world)  # a custodial clinic key: clinic_keys.sealed_private_jwk
    outcomes = [
        {"chest-xray": "normal"},
        {"chest-xray": "abnormal-tb", "hiv-screening": "positive"},
        {"chest-xray": "abnormal-other", "igra": "positive", "hbsag": "positive"},
        {"syphilis-nontreponemal": "positive", "drug-screening": "positive"},
    ]
    for number, chosen in enumerate(outcomes):
        submit(world, number=f"PAD-{number}", outcomes=chosen, passport=f"P{number:07d}")
    by_column: dict[str, set[int]] = defaultdict(set)
    with world.ctx.db.read_session() as session:
        for name in SEALED_COLUMNS:
            table_name, column_name = name.split(".")
            column = metadata.tables[table_name].c[column_name]
            for value in session.scalars(select(column).where(column.is_not(None))):
                by_column[name].add(len(value))
    overhead = sealed_length(0) - 64
    for name, lengths in by_column.items():
        for length in lengths:
            padded = length - overhead
            assert padded >= 64 and (padded & (padded - 1) == 0 or padded % 65536 == 0), name
    # the reproduction: whatever the findings, every outcome is as long as every other
    assert len(by_column["test_results.sealed_outcome"]) == 1
    assert sorted(by_column) == SEALED_COLUMNS
