"""The Merkle tree and signed notes against published vectors and an independent reference."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.crypto import merkle
from registry.crypto.merkle import ProofError, TileBuilder, TiledTree
from registry.crypto.notes import (
    COSIGNATURE_V1,
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    cosignature_time,
    open_checkpoint,
    parse_note,
    verify_note,
)
from tests.transparency import reference, vectors


def _tree(entries: list[bytes]) -> TiledTree:
    builder = TileBuilder(0, lambda level, index: b"")
    for entry in entries:
        builder.append(merkle.leaf_hash(entry))
    return builder.tree()


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_published_vectors(size: int) -> None:
    tree = _tree(vectors.LEAF_INPUTS[:size])
    assert tree.root().hex() == vectors.ROOTS[size - 1]
    leaves = [merkle.leaf_hash(e) for e in vectors.LEAF_INPUTS[:size]]
    assert merkle.root_of_leaves(leaves).hex() == vectors.ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "expected"), vectors.INCLUSION)
def test_inclusion_proofs_match_the_published_vectors(
    index: int, size: int, expected: list[str]
) -> None:
    tree = _tree(vectors.LEAF_INPUTS[:size])
    proof = tree.inclusion_proof(index)
    assert [p.hex() for p in proof] == expected
    leaf = merkle.leaf_hash(vectors.LEAF_INPUTS[index])
    merkle.verify_inclusion(leaf, index, size, proof, bytes.fromhex(vectors.ROOTS[size - 1]))


@pytest.mark.parametrize(("first", "second", "expected"), vectors.CONSISTENCY)
def test_consistency_proofs_match_the_published_vectors(
    first: int, second: int, expected: list[str]
) -> None:
    tree = _tree(vectors.LEAF_INPUTS[:second])
    proof = tree.consistency_proof(first)
    assert [p.hex() for p in proof] == expected
    merkle.verify_consistency(
        first,
        second,
        proof,
        bytes.fromhex(vectors.ROOTS[first - 1]),
        bytes.fromhex(vectors.ROOTS[second - 1]),
    )


def test_a_tampered_proof_or_root_is_refused() -> None:
    tree = _tree(vectors.LEAF_INPUTS)
    leaf = merkle.leaf_hash(vectors.LEAF_INPUTS[5])
    proof = tree.inclusion_proof(5)
    root = tree.root()
    with pytest.raises(ProofError, match="root"):
        merkle.verify_inclusion(leaf, 4, 8, proof, root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, 5, 8, proof[:-1], root)
    consistency = tree.consistency_proof(6)
    with pytest.raises(ProofError, match="first root"):
        merkle.verify_consistency(6, 8, consistency, bytes.fromhex(vectors.ROOTS[4]), root)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 1100), data=st.data())
def test_tiles_roots_and_proofs_agree_with_the_rfc_definitions(
    size: int, data: st.DataObject
) -> None:
    """Across tile boundaries (256 and 65536 are the tile edges of levels 0 and 1)."""
    entries = [i.to_bytes(4, "big") for i in range(size)]
    tree = _tree(entries)
    assert tree.root() == reference.mth(entries)
    index = data.draw(st.integers(0, size - 1))
    assert tree.inclusion_proof(index) == reference.path(index, entries)
    first = data.draw(st.integers(0, size))
    assert tree.consistency_proof(first) == reference.proof(first, entries)
    merkle.verify_inclusion(
        merkle.leaf_hash(entries[index]), index, size, tree.inclusion_proof(index), tree.root()
    )
    merkle.verify_consistency(
        first, size, tree.consistency_proof(first), reference.mth(entries[:first]), tree.root()
    )


def test_a_second_level_tile_carries_the_hash_of_each_full_tile_below() -> None:
    entries = [i.to_bytes(4, "big") for i in range(256 * 3 + 5)]
    builder = TileBuilder(0, lambda level, index: b"")
    for entry in entries:
        builder.append(merkle.leaf_hash(entry))
    level1 = bytes(builder.tile(1, 0))
    assert len(level1) == 3 * 32
    assert level1[32:64] == reference.mth(entries[256:512])
    assert len(builder.tile(0, 3)) == 5 * 32


def test_tile_paths_follow_tlog_tiles() -> None:
    assert merkle.tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert merkle.tile_path(1, 5, 17) == "tile/1/005.p/17"
    assert merkle.tile_path("entries", 0) == "tile/entries/000"
    assert merkle.parse_tile_index(["x001", "x234", "067"]) == 1234067
    for bad in (["1234"], ["001", "234"], ["x01"], []):
        with pytest.raises(ValueError):
            merkle.parse_tile_index(bad)


def test_notes_match_the_published_example() -> None:
    verifier = Verifier.parse(vectors.NOTE_VERIFIER_KEY)
    seed = base64.b64decode(vectors.NOTE_SIGNER_KEY.split("+", 4)[4])[1:]
    signer = Signer.from_seed("PeterNeumann", seed)
    assert signer.verifier.vkey() == vectors.NOTE_VERIFIER_KEY
    signed = signer.sign(vectors.NOTE_TEXT)
    assert signed == vectors.NOTE_TEXT + "\n" + vectors.NOTE_SIGNATURE_LINE
    verify_note(parse_note(signed), verifier)
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(parse_note(signed.replace("cryptography", "cryptographY")), verifier)
    for mangled in (
        vectors.NOTE_VERIFIER_KEY[:-1],
        vectors.NOTE_VERIFIER_KEY.replace("c74f", "c75f"),
    ):
        with pytest.raises(NoteError):
            Verifier.parse(mangled)


def test_a_checkpoint_and_its_cosignature() -> None:
    log = Signer.from_seed("registry.example/log", bytes(range(32)))
    witness = Signer.from_seed("witness.example/w1", bytes(range(1, 33)), kind=COSIGNATURE_V1)
    checkpoint = Checkpoint("registry.example/log", 8, bytes.fromhex(vectors.ROOTS[7]))
    note = log.sign(checkpoint.text())
    cosigned = note + witness.signature_line(checkpoint.text(), timestamp=1_700_000_000)
    opened, parsed = open_checkpoint(cosigned, log.verifier)
    assert opened == checkpoint
    assert cosignature_time(parsed, witness.verifier) == 1_700_000_000
    elsewhere = Checkpoint("other.example/log", 8, checkpoint.root)
    with pytest.raises(NoteError, match=r"not 'registry\.example/log'"):
        open_checkpoint(log.sign(elsewhere.text()), log.verifier)
    with pytest.raises(NoteError, match="no signature"):
        open_checkpoint(Signer.from_seed(log.name, bytes(32)).sign(checkpoint.text()), log.verifier)
