"""JSON parsing for everything the registry accepts: bounded nesting, finite numbers, no NUL.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity`` by default, which are not JSON
(RFC 8259) and compare false with every date, so ``"exp": NaN`` would never expire. PostgreSQL
text refuses the NUL character; a ``\\u0000`` anywhere in a document is refused here, before a
value reaches the database or a log line.
"""

from __future__ import annotations

import json
import re
from typing import Any


class JSONTooDeep(ValueError):
    """The document nests arrays/objects deeper than allowed."""


class JSONNotFinite(ValueError):
    """The document holds NaN, Infinity or -Infinity, which JSON does not have."""


class JSONHasNul(ValueError):
    """A key or string of the document holds the NUL character (U+0000)."""


def refuse_constant(name: str) -> Any:
    """``parse_constant`` for ``json.loads``: NaN, Infinity and -Infinity are not JSON."""
    raise JSONNotFinite(f"{name} is not a JSON number")


# one decoder for every strict read (json.loads with a hook builds a new one per call)
_STRICT = json.JSONDecoder(parse_constant=refuse_constant)


def nesting_depth(value: Any) -> int:
    """How deep arrays and objects nest in a parsed JSON value (iterative, no recursion)."""
    deepest = 0
    level = [value] if isinstance(value, dict | list) else []
    # one level at a time: each container is looked at once, and only containers are kept
    while level:
        deepest += 1
        below: list[Any] = []
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, dict | list):
                    below.append(child)
        level = below
    return deepest


# U+0000, and a UTF-16 surrogate standing alone (``"\ud800"`` parses in Python, but the text
# cannot be encoded as UTF-8: not stored, not signed, not shown)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def nul_location(value: Any) -> str | None:
    """Where the first NUL or lone surrogate sits in a parsed JSON value (a JSON path), or None."""
    stack: list[tuple[Any, str]] = [(value, "$")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if _UNSTORABLE.search(node):
                return path
        elif isinstance(node, dict):
            for key, child in node.items():
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    return f"{path} (a key)"
                stack.append((child, f"{path}.{key}"))
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(node))
    return None


# the escapes that can spell U+0000 or a UTF-16 surrogate
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SUSPECT_ESCAPE_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def may_hold_nul(text: str | bytes) -> bool:
    """Whether parsed text can hold U+0000 or a lone surrogate: JSON spells them only as
    escapes (the parser refuses a raw control character in a string, and UTF-8 bytes cannot
    hold a surrogate), so text without such an escape cannot."""
    if isinstance(text, bytes):
        # UTF-16 or UTF-32 text spells the escape with zero bytes between: walk the value
        if not json.detect_encoding(text).startswith("utf-8"):
            return True
        return _SUSPECT_ESCAPE_BYTES.search(text) is not None
    # a str may carry a surrogate character as such, not only as an escape
    return _SUSPECT_ESCAPE.search(text) is not None or _UNSTORABLE.search(text) is not None


def refuse_nul(value: Any) -> None:
    """Raise JSONHasNul when a key or string of a parsed JSON value holds U+0000."""
    where = nul_location(value)
    if where is not None:
        raise JSONHasNul(
            "the NUL character (\\u0000) and lone UTF-16 surrogates (\\ud800-\\udfff) are not "
            f"accepted in text, found at {where}"
        )


def _decode(text: str | bytes) -> Any:
    """``json.loads(text, parse_constant=refuse_constant)`` with one decoder made once."""
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    if not isinstance(text, str):
        raise TypeError(f"the JSON object must be str or bytes, not {type(text).__name__}")
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _STRICT.decode(text)


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` refusing NaN/Infinity and NUL characters (for cards, tokens, files)."""
    value = _decode(text)
    if may_hold_nul(text):
        refuse_nul(value)
    return value


def loads_limited(text: str | bytes, *, max_depth: int = 64) -> Any:
    """``loads_strict`` that also refuses documents nested deeper than ``max_depth``."""
    try:
        value = _decode(text)
    except RecursionError as exc:
        # the C decoder guards its recursion and raises cleanly; nothing is left half-parsed
        raise JSONTooDeep(f"JSON nests deeper than {max_depth} levels") from exc
    if nesting_depth(value) > max_depth:
        raise JSONTooDeep(f"JSON nests deeper than {max_depth} levels")
    if may_hold_nul(text):
        refuse_nul(value)
    return value
