"""QR images of cards: two segments (byte ``shc:/``, numeric digits), level L, version ≤ 22.

No barcode scanner is installed here, so the tests read the PNG back with a small ISO/IEC 18004
reader written for the purpose: sample the modules, read the format information, unmask,
de-interleave the blocks and parse the segments. It trusts the image to be clean (no error
correction), which a freshly rendered PNG is.
"""

from __future__ import annotations

import io
import random
import string
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from segno import consts

from registry.certificates import qr, shc

FORMAT_MASK = 0b101010000010010
LEVELS = {0b01: "L", 0b00: "M", 0b11: "Q", 0b10: "H"}
LEVEL_CONSTANTS = {
    "L": consts.ERROR_LEVEL_L,
    "M": consts.ERROR_LEVEL_M,
    "Q": consts.ERROR_LEVEL_Q,
    "H": consts.ERROR_LEVEL_H,
}
MASKS = {
    0: lambda x, y: (x + y) % 2 == 0,
    1: lambda x, y: y % 2 == 0,
    2: lambda x, y: x % 3 == 0,
    3: lambda x, y: (x + y) % 3 == 0,
    4: lambda x, y: (x // 3 + y // 2) % 2 == 0,
    5: lambda x, y: x * y % 2 + x * y % 3 == 0,
    6: lambda x, y: (x * y % 2 + x * y % 3) % 2 == 0,
    7: lambda x, y: ((x + y) % 2 + x * y % 3) % 2 == 0,
}


def modules_from_png(png: bytes, *, scale: int, border: int = 4) -> list[list[int]]:
    """The dark (1) and light (0) modules of a QR image rendered at a known scale."""
    image = Image.open(io.BytesIO(png)).convert("L")
    size = image.width // scale - 2 * border
    assert image.width == image.height == (size + 2 * border) * scale
    # The quiet zone really is light.
    assert all(image.getpixel((x, 1)) == 255 for x in range(image.width))

    def dark(column: int, row: int) -> int:
        centre = ((border + column) * scale + scale // 2, (border + row) * scale + scale // 2)
        value = image.getpixel(centre)
        assert isinstance(value, int)
        return int(value < 128)

    return [[dark(x, y) for x in range(size)] for y in range(size)]


def alignment_positions(version: int) -> list[int]:
    if version == 1:
        return []
    count = version // 7 + 2
    step = 26 if version == 32 else (version * 4 + count * 2 + 1) // (count * 2 - 2) * 2
    size = version * 4 + 17
    return [6, *sorted(size - 7 - i * step for i in range(count - 1))]


def function_modules(version: int) -> list[list[bool]]:
    size = version * 4 + 17
    function = [[False] * size for _ in range(size)]

    def mark(rows: range, columns: range) -> None:
        for y in rows:
            for x in columns:
                function[y][x] = True

    mark(range(size), range(6, 7))  # timing, column
    mark(range(6, 7), range(size))  # timing, row
    mark(range(9), range(9))  # finder, separator, format: top left
    mark(range(9), range(size - 8, size))  # top right
    mark(range(size - 8, size), range(9))  # bottom left, with the dark module
    positions = alignment_positions(version)
    corners = (
        {(positions[0], positions[0]), (positions[0], positions[-1]), (positions[-1], positions[0])}
        if positions
        else set()
    )
    for cy in positions:
        for cx in positions:
            if (cx, cy) not in corners:
                mark(range(cy - 2, cy + 3), range(cx - 2, cx + 3))
    if version >= 7:
        mark(range(size - 11, size - 8), range(6))
        mark(range(6), range(size - 11, size - 8))
    return function


def read_segments(matrix: list[list[int]]) -> tuple[int, str, list[tuple[str, str]]]:
    """Version, error correction level and (mode, text) segments of a clean QR matrix."""
    size = len(matrix)
    version = (size - 17) // 4
    # Format information, first copy (ISO/IEC 18004 7.9), bit 0 nearest the corner.
    places = (
        [(8, i) for i in range(6)] + [(8, 7), (8, 8), (7, 8)] + [(14 - i, 8) for i in range(9, 15)]
    )
    raw = sum(matrix[y][x] << i for i, (x, y) in enumerate(places)) ^ FORMAT_MASK
    data = raw >> 10
    remainder = data << 10
    for bit in range(14, 9, -1):
        if remainder >> bit & 1:
            remainder ^= 0b10100110111 << (bit - 10)
    assert remainder == raw & 0x3FF, "format information fails its BCH check"
    level, mask = LEVELS[data >> 3], MASKS[data & 0b111]

    function = function_modules(version)
    bits: list[int] = []
    right = size - 1
    while right >= 1:
        if right == 6:
            right = 5
        upward = (right + 1) & 2 == 0
        for step in range(size):
            y = size - 1 - step if upward else step
            for x in (right, right - 1):
                if not function[y][x]:
                    bits.append(matrix[y][x] ^ int(mask(x, y)))
        right -= 2
    codewords = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits) - 7, 8)]

    # Block structure (ISO/IEC 18004 table 9), from segno's copy of the table.
    table: Any = consts.ECC
    groups = table[version][LEVEL_CONSTANTS[level]]
    blocks: list[list[int]] = []
    for group in groups:
        blocks += [[] for _ in range(group.num_blocks)]
    lengths = [group.num_data for group in groups for _ in range(group.num_blocks)]
    position = 0
    for i in range(max(lengths)):
        for block, length in zip(blocks, lengths, strict=True):
            if i < length:
                block.append(codewords[position])
                position += 1
    stream = "".join(f"{c:08b}" for block in blocks for c in block)

    segments: list[tuple[str, str]] = []
    cursor = 0

    def take(count: int) -> int:
        nonlocal cursor
        value = int(stream[cursor : cursor + count], 2)
        cursor += count
        return value

    while len(stream) - cursor >= 4:
        mode = take(4)
        if mode == 0:
            break
        if mode == 0b0001:
            length = take(10 if version <= 9 else 12 if version <= 26 else 14)
            digits = []
            for start in range(0, length, 3):
                width = min(3, length - start)
                digits.append(f"{take({3: 10, 2: 7, 1: 4}[width]):0{width}d}")
            segments.append(("numeric", "".join(digits)))
        elif mode == 0b0100:
            length = take(8 if version <= 9 else 16)
            segments.append(("byte", bytes(take(8) for _ in range(length)).decode("latin-1")))
        else:
            raise AssertionError(f"unexpected mode {mode:04b}")
    return version, level, segments


def random_card_text(length: int, seed: int) -> str:
    """A syntactically valid compact JWS of exactly ``length`` characters, as QR text."""
    alphabet = string.ascii_letters + string.digits + "-_"
    chooser = random.Random(seed)
    body = "".join(chooser.choice(alphabet) for _ in range(length - 2))
    token = f"{body[:40]}.{body[40:-86]}.{body[-86:]}"
    assert len(token) == length
    return shc.qr_payload(token)


def test_the_spec_example_qr_reads_back_as_byte_prefix_and_numeric_digits(
    shc_examples: Path,
) -> None:
    text = (shc_examples / "example-00-f-qr-code-numeric-value-0.txt").read_text().strip()
    version, level, segments = read_segments(modules_from_png(qr.qr_png(text, scale=3), scale=3))
    assert segments == [("byte", "shc:/"), ("numeric", text[5:])]
    assert level == "L"
    assert version <= 22


def test_a_card_at_the_1195_character_limit_fits_version_22() -> None:
    text = random_card_text(shc.MAX_SINGLE_QR_JWS, seed=1)
    code = qr.qr_code(text)
    assert code.designator == "22-L"
    version, level, segments = read_segments(modules_from_png(qr.qr_png(text, scale=2), scale=2))
    assert (version, level) == (22, "L")
    assert segments == [("byte", "shc:/"), ("numeric", text[5:])]
    assert shc.jws_from_qr("".join(s for _, s in segments)) == shc.jws_from_qr(text)


def test_a_real_card_reads_back_from_its_png(card: str) -> None:
    text = shc.qr_payload(card)
    _, _, segments = read_segments(modules_from_png(qr.qr_png(text, scale=2), scale=2))
    assert shc.jws_from_qr("".join(s for _, s in segments)) == card


def test_error_correction_is_never_boosted_above_l() -> None:
    # A short card leaves room for a stronger level; the spec's sizing assumes L.
    assert qr.qr_code(random_card_text(300, seed=2)).designator.endswith("-L")


def test_svg_and_png_are_what_they_claim(card: str) -> None:
    text = shc.qr_payload(card)
    svg = qr.qr_svg(text)
    assert svg.startswith(b"<svg") and b"<?xml" not in svg and b'width="' in svg
    scalable = qr.qr_svg(text, size_attributes=False)
    assert b"viewBox" in scalable and b'width="' not in scalable
    png = qr.qr_png(text, scale=3)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    version = int(qr.qr_code(text).designator.split("-")[0])
    assert Image.open(io.BytesIO(png)).size[0] == (version * 4 + 17 + 8) * 3


@pytest.mark.parametrize("text", ["https://example.org", "shc:/567", "shc:/1/2/5676"])
def test_qr_refuses_text_that_is_not_a_single_card(text: str) -> None:
    with pytest.raises(shc.CardFormatError):
        qr.qr_png(text)
