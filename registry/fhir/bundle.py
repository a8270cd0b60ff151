"""The raw JSON layer: decoding a submission within nesting limits, and removing the signature."""

from __future__ import annotations

import json
import math
from typing import Any

from registry.errors import InvalidResource, Issue
from registry.jsonlimits import may_hold_nul, nesting_depth, nul_location


def strip_signature(bundle: dict[str, Any]) -> dict[str, Any]:
    """Return a shallow copy of the bundle without its signature (the content a clinic signs)."""
    return {key: value for key, value in bundle.items() if key != "signature"}


def load_json(raw: bytes | str | dict[str, Any], *, max_depth: int) -> dict[str, Any]:
    """Decode a submission into a JSON object, refusing anything nested deeper than max_depth."""
    if isinstance(raw, dict):
        problem = _check_value_tree(raw, max_depth)
        if problem:
            raise _invalid("structure", problem)
        _refuse_nul(raw)
        return raw
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _invalid(
                "structure", f"body is not UTF-8 encoded JSON (byte {exc.start})"
            ) from None
    elif isinstance(raw, str):
        text = raw
    else:
        raise _invalid("structure", f"expected JSON text or an object, got {type(raw).__name__}")
    too_deep = _invalid("too-costly", f"JSON is nested deeper than {max_depth} levels")
    try:
        if text.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        value = _DECODER.decode(text)
    except RecursionError:
        # the C decoder guards its own recursion; a pre-scan of the text would cost O(n^2)
        # on crafted input (a long run of unterminated escaped quotes)
        raise too_deep from None
    except _DuplicateKey as exc:
        raise _invalid("structure", f"duplicate key {exc.key[:60]!r} in a JSON object") from None
    except ValueError as exc:
        raise _invalid("structure", f"body is not valid JSON: {_short(exc)}") from None
    if nesting_depth(value) > max_depth:
        raise too_deep
    if not isinstance(value, dict):
        raise _invalid("structure", f"expected a JSON object, got {_json_type(value)}")
    if may_hold_nul(text):
        _refuse_nul(value)
    return value


def _refuse_nul(value: dict[str, Any]) -> None:
    # PostgreSQL text cannot hold U+0000; FHIR strings should hold no control characters
    where = nul_location(value)
    if where is not None:
        location = "Bundle" + where[1:]
        raise InvalidResource(
            issues=[
                Issue(
                    code="value",
                    diagnostics="the NUL character (\\u0000) and lone UTF-16 surrogates are "
                    "not allowed in FHIR strings",
                    location=location,
                )
            ]
        )


def _check_value_tree(root: dict[str, Any], max_depth: int) -> str | None:
    """Walk an object handed over as Python values: JSON types only, bounded depth, no cycles."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                return f"JSON is nested deeper than {max_depth} levels"
            if isinstance(value, dict):
                if not all(isinstance(key, str) for key in value):
                    return "object keys must be strings"
                stack.extend((child, depth + 1) for child in value.values())
            else:
                stack.extend((child, depth + 1) for child in value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                return "numbers must be finite"
        elif value is not None and not isinstance(value, str | int):
            return f"{type(value).__name__} is not a JSON value"
    return None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys make the signed content ambiguous: parsers disagree on which value wins.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


# one decoder for every submission (json.loads with hooks builds a new one per call)
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a number" if not isinstance(value, bool) else "a boolean"


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "…"


def _invalid(code: str, diagnostics: str) -> InvalidResource:
    return InvalidResource(issues=[Issue(code=code, diagnostics=diagnostics, location=None)])
