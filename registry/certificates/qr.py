"""QR codes of certificate cards, as the SMART Health Cards spec encodes them.

One QR code per card with two segments: ``shc:/`` in byte mode, then the digits in numeric mode
(20 % denser than byte mode for a JWS). Error correction L, never boosted: a card of 1195
characters then fits version 22 (105 modules), which the spec keeps scannable at 40 mm.
"""

from __future__ import annotations

import io
from typing import Any

import segno

from registry.certificates.shc import QR_PREFIX, CardFormatError, jws_from_qr

MAX_QR_VERSION = 22
QUIET_ZONE = 4  # modules; ISO/IEC 18004 asks for four


def qr_code(text: str) -> segno.QRCode:
    """The QR code of a card's ``shc:/`` text; raises CardFormatError for anything else."""
    jws_from_qr(text)  # the same strict checks a scanner of ours applies
    digits = text.strip()[len(QR_PREFIX) :]
    # A sequence makes segno encode one segment per item, each in its best mode: byte for the
    # prefix (it has lower-case letters), numeric for the digits. segno's typed signature only
    # names a single value; its maintainer documents the sequence form in heuer/segno#76.
    segments: Any = [QR_PREFIX, digits]
    code = segno.make(segments, error="l", boost_error=False, micro=False)
    if not isinstance(code.version, int) or code.version > MAX_QR_VERSION:
        raise CardFormatError(f"the card needs QR version {code.version}, above {MAX_QR_VERSION}")
    return code


def qr_svg(text: str, *, scale: int = 4, size_attributes: bool = True) -> bytes:
    """An SVG document of a card's QR code, black on white with the quiet zone.

    Without size attributes the SVG carries only a viewBox and scales to its container, which
    is what a printed page wants.
    """
    out = io.BytesIO()
    qr_code(text).save(
        out,
        kind="svg",
        scale=scale,
        border=QUIET_ZONE,
        dark="#000",
        light="#fff",
        omitsize=not size_attributes,
        title="SMART Health Card",
        # no "<?xml …?>" declaration: the SMART Health Cards validator (and some image
        # pipelines) only recognise a document that starts with <svg
        xmldecl=False,
        svgns=True,
    )
    return out.getvalue()


def qr_png(text: str, *, scale: int = 4) -> bytes:
    """A PNG image of a card's QR code, ``scale`` pixels per module, with the quiet zone."""
    out = io.BytesIO()
    qr_code(text).save(out, kind="png", scale=scale, border=QUIET_ZONE, dark="#000", light="#fff")
    return out.getvalue()
