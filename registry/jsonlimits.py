"""JSON parsing that refuses documents nested deeper than a limit, without crashing on them."""

from __future__ import annotations

import json
from typing import Any


class JSONTooDeep(ValueError):
    """The document nests arrays/objects deeper than allowed."""


def nesting_depth(value: Any) -> int:
    """How deep arrays and objects nest in a parsed JSON value (iterative, no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


def loads_limited(text: str | bytes, *, max_depth: int = 64) -> Any:
    """``json.loads`` that refuses documents nested deeper than ``max_depth``."""
    try:
        value = json.loads(text)
    except RecursionError as exc:
        # the C decoder guards its recursion and raises cleanly; nothing is left half-parsed
        raise JSONTooDeep(f"JSON nests deeper than {max_depth} levels") from exc
    if nesting_depth(value) > max_depth:
        raise JSONTooDeep(f"JSON nests deeper than {max_depth} levels")
    return value
