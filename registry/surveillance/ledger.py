"""The release ledger: later data versions of a year published without undoing earlier releases.

Once counts of a year have been released, they are a *layer* of the year's ledger and stay as
they were. A later data version (late records, another closed month) is the layers released so
far plus one new layer: the records added since. Each layer is protected on its own, as a table
of its own (`protect` on the layer's counts), and a release of the newest version publishes a
count only where it is the sum of counts that every layer publishes (or that a layer cannot
hold at all). Nothing published is then more than the layers' own protected releases, and the
layers are independent tables of non-negative counts, so:

* every count withheld in a layer keeps its interval, whatever else is published;
* a count of the new version is withheld whenever one of its parts is;
* subtracting one version from another gives at most the new layer, itself protected.

See docs/surveillance.md, section 5.1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from registry.surveillance.cube import (
    ALL,
    DIMENSIONS,
    FLAT_DIMENSIONS,
    MEASURES,
    Cube,
    Granularity,
    Microcell,
    Period,
    build_cube,
)
from registry.surveillance.disclosure import ProtectedCube, protect, sensitivity
from registry.surveillance.witness import COMPLEMENTARY, HIDDEN, PRIMARY, PUBLISHED


def released(layers: Iterable[Iterable[Microcell]]) -> dict[tuple[str, ...], dict[str, int]]:
    """The microcells of the layers added up: the counts released so far."""
    total: dict[tuple[str, ...], dict[str, int]] = {}
    for layer in layers:
        for key, values in layer:
            row = total.setdefault(tuple(key), dict.fromkeys(MEASURES, 0))
            for measure in MEASURES:
                row[measure] += int(values.get(measure, 0))
    return total


def added_since(
    current: Iterable[Microcell], layers: Iterable[Iterable[Microcell]]
) -> tuple[list[Microcell], bool]:
    """The records added since the released layers: the new layer, and whether any went away.

    A microcell whose count fell below what was released (a withdrawal, or an amendment moving
    a record out of it) cannot be a layer of non-negative counts; the second value says so.
    """
    before_all = released(layers)
    added: list[Microcell] = []
    removed = False
    now = {tuple(key): values for key, values in current}
    for key in sorted(now.keys() | before_all.keys()):
        before = before_all.get(key, {})
        after = now.get(key, {})
        change = {m: int(after.get(m, 0)) - before.get(m, 0) for m in MEASURES}
        if any(v < 0 for v in change.values()):
            removed = True
        if any(v > 0 for v in change.values()):
            added.append((key, {m: max(v, 0) for m, v in change.items()}))
    return added, removed


def layer_cube(
    added: Iterable[Microcell], current: Cube, *, known_empty: Iterable[Mapping[str, str]] = ()
) -> Cube:
    """The cube of the records added since the last release, in the shape of `current`."""
    return build_cube(
        added,
        year=current.year,
        closed_months=current.closed_months,
        categories={
            d: axis.codes[: axis.leaf_count]
            for d, axis in zip(FLAT_DIMENSIONS, current.axes[1:], strict=True)
        },
        known_empty=known_empty,
        max_crossed=current.max_crossed,
    )


def protect_layer(
    added: Iterable[Microcell],
    current: Cube,
    *,
    k: int,
    known_empty: Iterable[Mapping[str, str]] = (),
) -> ProtectedCube:
    """Protect the records added since the last release as a table of their own.

    The layer has the shape of `current` (the new version's cube), and each of its cells is
    priced by the new version's count: withholding a cell of the layer withholds that count.
    The first layer of a year (nothing released before) is the version itself.
    """
    layer = layer_cube(added, current, known_empty=known_empty)
    return protect(layer, k=k, prices=current.values)


def combine(cube: Cube, layers: Sequence[ProtectedCube]) -> ProtectedCube:
    """The pattern of `cube` (the sum of `layers`) that publishes only what the layers publish.

    A count is published when, in every layer, the same cell (or the layer's cells covering the
    same months) is published, or the layer cannot hold it: months after the layer's closed
    months, or a category the layer never counted. Its value is then the sum of published
    values. Everything else is withheld, flagged primary where the rule marks the count itself.
    """
    if not layers:
        raise ValueError("a release combines at least one layer")
    k = layers[0].k
    if any(layer.k != k for layer in layers):
        raise ValueError("layers of one release share k")
    status = {m: bytearray(cube.size) for m in cube.measures}
    for index in range(cube.size):
        if not cube.publishable(index):
            for m in cube.measures:
                status[m][index] = HIDDEN
            continue
        key = cube.key(index)
        pieces = [(layer, _pieces(layer.cube, key)) for layer in layers]
        for m in cube.measures:
            known = all(
                layer.status[m][piece] == PUBLISHED for layer, found in pieces for piece in found
            )
            if known:
                if sensitivity(cube, m, index, k):  # the sum of published parts never is
                    raise AssertionError(f"{m} {key} would be published although sensitive")
                status[m][index] = PUBLISHED
            else:
                status[m][index] = PRIMARY if sensitivity(cube, m, index, k) else COMPLEMENTARY
    return ProtectedCube(
        cube=cube, k=k, status={m: bytes(s) for m, s in status.items()}, witnesses=()
    )


def _pieces(layer: Cube, key: Sequence[str]) -> list[int]:
    """The layer's cells that add up to the cell `key` ([] when the layer cannot hold it)."""
    codes: list[str] = []
    for dimension, code in zip(DIMENSIONS[1:], key[1:], strict=True):
        axis = layer.axes[DIMENSIONS.index(dimension)]
        if code != ALL and code not in axis.codes:
            return []  # the layer counted nobody of this category
        codes.append(code)
    period = Period.parse(key[0])
    months = [m for m in period.months if m <= layer.closed_months]
    if not months:
        return []
    labels = layer.axes[0].codes
    if period.label in labels:
        return [layer.index([period.label, *codes])]
    cover: list[str] = []
    left = set(months)
    for quarter in range(1, 5):
        label = Period(period.year, Granularity.QUARTER, quarter).label
        inside = set(Period.parse(label).months)
        if label in labels and inside <= left:
            cover.append(label)
            left -= inside
    cover += [Period(period.year, Granularity.MONTH, m).label for m in sorted(left)]
    return [layer.index([label, *codes]) for label in cover]
