"""RFC 9162 Merkle trees over tiles (c2sp.org/tlog-tiles): hashes, roots and proofs.

Leaf hash ``H(0x00 || entry)``, node hash ``H(0x01 || left || right)``, SHA-256. A tree is
read through its tiles: a level-``L`` tile holds up to 256 consecutive hashes of complete
subtrees of height ``8 L``; heights between those are hashed from the tile below. Proofs follow
the definitions of RFC 9162 section 2.1 (``PATH`` and ``PROOF``); the verifiers are the
iterative algorithms of sections 2.1.3.2 and 2.1.4.2, for clients that hold no tiles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
EMPTY_ROOT = hashlib.sha256(b"").digest()

# (level, index) -> the stored hashes of that tile (a partial tile is shorter)
TileSource = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not hold, or a request for one that cannot exist."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def fold(hashes: Sequence[bytes]) -> bytes:
    """The root of a complete subtree from its 2**k hashes at one height."""
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def _largest_power_below(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` with N in x-prefixed groups of three digits (x001/x234/067)."""
    digits = f"{index:d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    path = "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{path}{suffix}"


def parse_tile_index(parts: Sequence[str]) -> int:
    """The index N of a tile path's groups (``["x001", "x234", "067"]`` -> 1234067)."""
    if not parts or len(parts) > 7:
        raise ValueError("a tile index has one to seven groups of three digits")
    digits = ""
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        group = part if last else part.removeprefix("x")
        if (not last and not part.startswith("x")) or len(group) != 3 or not group.isdigit():
            raise ValueError(f"bad tile index group {part!r}")
        digits += group
    return int(digits)


class TiledTree:
    """A tree of ``size`` leaves read through its tiles; hashes, roots and proofs from them."""

    def __init__(self, size: int, tiles: TileSource) -> None:
        self.size = size
        self._tiles = tiles
        self._cache: dict[tuple[int, int], bytes] = {}

    def _tile(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self._cache:
            self._cache[key] = self._tiles(level, index)
        return self._cache[key]

    def subtree(self, height: int, index: int) -> bytes:
        """The hash of the complete subtree over [index * 2**height, (index + 1) * 2**height)."""
        if (index + 1) << height > self.size:
            raise ProofError(f"subtree {height}/{index} is not complete in a tree of {self.size}")
        level, below = divmod(height, TILE_HEIGHT)
        count = 1 << below  # hashes of height 8*level that make up this subtree
        first = index * count
        tile = self._tile(level, first // TILE_WIDTH)
        start = (first % TILE_WIDTH) * HASH_SIZE
        raw = tile[start : start + count * HASH_SIZE]
        if len(raw) != count * HASH_SIZE:
            raise ProofError(f"tile {level}/{first // TILE_WIDTH} is missing hashes")
        return fold([raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE)])

    def range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range whose start is aligned to its largest power-of-two part."""
        n = end - start
        if n <= 0:
            raise ProofError("an empty range has no hash")
        if n & (n - 1) == 0 and start % n == 0:
            return self.subtree(n.bit_length() - 1, start // n)
        k = _largest_power_below(n)
        return node_hash(self.range_hash(start, start + k), self.range_hash(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all of them by default)."""
        size = self.size if size is None else size
        return EMPTY_ROOT if size == 0 else self.range_hash(0, size)

    def leaf(self, index: int) -> bytes:
        return self.subtree(0, index)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ProofError(f"leaf {index} is not in a tree of {size}")
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _largest_power_below(n)
        if m < k:
            return [*self._path(m, start, start + k), self.range_hash(start + k, end)]
        return [*self._path(m - k, start + k, end), self.range_hash(start, start + k)]

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """PROOF(first, D[0:second]) of RFC 9162 section 2.1.4.1."""
        second = self.size if second is None else second
        if not 0 <= first <= second <= self.size:
            raise ProofError(f"no consistency proof from {first} to {second}")
        if first in (0, second):
            return []
        return self._subproof(first, 0, second, True)

    def _subproof(self, m: int, start: int, end: int, whole: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if whole else [self.range_hash(start, end)]
        k = _largest_power_below(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, whole), self.range_hash(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self.range_hash(start, start + k)]


def root_of_leaves(leaves: Sequence[bytes]) -> bytes:
    """The root over leaf hashes held in memory (tests, small trees, the log's migration)."""
    level = list(leaves)
    if not level:
        return EMPTY_ROOT
    # the RFC's left-heavy split equals pairing from the left and carrying an odd last node up
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 section 2.1.3.2; raises ProofError when the leaf is not at index under root."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is too short")
    if r != root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> None:
    """RFC 9162 section 2.1.4.2; raises ProofError unless the larger tree extends the smaller."""
    if not 0 <= first <= second:
        raise ProofError(f"a tree of {second} cannot extend one of {first}")
    if first == second:
        if proof:
            raise ProofError("equal sizes take an empty proof")
        if first_root != second_root:
            raise ProofError(f"two different roots for a tree of {first}")
        return
    if first == 0:
        if proof:
            raise ProofError("an empty first tree takes an empty proof")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is too short")
    if fr != first_root:
        raise ProofError("the consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("the consistency proof does not lead to the second root")


class TileBuilder:
    """Appends leaf hashes to a tiled tree, carrying full tiles up a level, in memory.

    ``tiles`` holds whatever the store had for the rightmost tile of each level (loaded through
    ``load``); ``dirty`` names the tiles an append changed, to be written back.
    """

    def __init__(self, size: int, load: TileSource) -> None:
        self.size = size
        self._load = load
        self.tiles: dict[tuple[int, int], bytearray] = {}
        self.dirty: set[tuple[int, int]] = set()

    def tile(self, level: int, index: int) -> bytearray:
        key = (level, index)
        if key not in self.tiles:
            self.tiles[key] = bytearray(self._load(level, index))
        return self.tiles[key]

    def append(self, leaf: bytes) -> None:
        position, level, value = self.size, 0, leaf
        while True:
            index = position // TILE_WIDTH
            tile = self.tile(level, index)
            tile += value
            self.dirty.add((level, index))
            if len(tile) < TILE_WIDTH * HASH_SIZE:
                break
            value = fold([bytes(tile[i : i + HASH_SIZE]) for i in range(0, len(tile), HASH_SIZE)])
            position, level = index, level + 1
        self.size += 1

    def tree(self) -> TiledTree:
        return TiledTree(self.size, lambda level, index: bytes(self.tile(level, index)))
