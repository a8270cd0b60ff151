"""``python -m bench [name ...]``: run benchmarks side by side, then rewrite BENCHMARKS.md."""

from __future__ import annotations

import importlib
import json
import sys

from bench.common import RESULTS, machine

BENCHMARKS = ["submission", "verification", "offline", "surveillance", "soak"]


def main(argv: list[str]) -> int:
    chosen = argv or BENCHMARKS
    for name in chosen:
        print(f"== {name}", flush=True)
        measurement = importlib.import_module(f"bench.{name}").run()
        measurement.save()
        print(json.dumps(measurement.figures, indent=2), "met" if measurement.met else "NOT met")
    write_report()
    return 0


def write_report() -> None:
    """BENCHMARKS.md from every saved result."""
    from pathlib import Path

    lines = [
        "# Benchmarks",
        "",
        "Measured ratios (SPEC §12), each side by side in one run on the same machine. "
        "Regenerate with `make bench`; this file is rewritten from `bench/results/`.",
        "",
        f"Machine: {json.dumps(machine())}",
        "",
    ]
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        status = "met" if result["met"] else "NOT met"
        lines += [
            f"## {result['name']}",
            "",
            f"Target: {result['target']} — **{status}**",
            "",
            "| figure | value |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v} |" for k, v in result["figures"].items()]
        lines += ["", f"Command: `{result['command']}`", ""]
        if result.get("notes"):
            lines += [result["notes"], ""]
    Path(__file__).resolve().parents[1].joinpath("BENCHMARKS.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
