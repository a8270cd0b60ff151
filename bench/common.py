"""What every benchmark shares: a throwaway registry, timing loops and the results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Measurement:
    """One benchmark's figures, written to bench/results/<name>.json."""

    name: str
    target: str
    figures: dict[str, Any] = field(default_factory=dict)
    met: bool | None = None
    command: str = ""
    notes: str = ""

    def save(self) -> None:
        RESULTS.mkdir(exist_ok=True)
        payload = {**self.__dict__, "machine": machine()}
        (RESULTS / f"{self.name}.json").write_text(json.dumps(payload, indent=2, default=str))


def machine() -> dict[str, Any]:
    """The facts that make two runs comparable."""
    return {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def rate(operation: Callable[[int], object], *, count: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` operations per second of ``operation(i)`` for i in range(count)."""
    best = 0.0
    for repeat in range(repeats):
        start = time.perf_counter()
        for i in range(count):
            operation(repeat * count + i)
        elapsed = time.perf_counter() - start
        best = max(best, count / elapsed)
    return best


def percentile(samples: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


@contextmanager
def throwaway_registry(database_url: str | None = None) -> Iterator[Any]:
    """A migrated registry with keys and rulesets on a temporary SQLite file (or a given URL)."""
    from registry import create_app
    from registry.schema import upgrade

    with tempfile.TemporaryDirectory() as folder:
        url = database_url or f"sqlite:///{folder}/bench.sqlite3"
        upgrade(url)
        app = create_app(
            {
                "database_url": url,
                "keys_dir": Path(folder) / "keys",
                "base_url": "http://registry.test",
            },
            create_keys=True,
        )
        from registry.certificates.service import sync_rulesets

        ctx = app.extensions["registry"]
        with ctx.db.unit_of_work() as uow:
            sync_rulesets(uow, profiles_dir=ctx.settings.profiles_dir)
            uow.commit()
        try:
            yield app
        finally:
            app.extensions["registry"].db.engine.dispose()
