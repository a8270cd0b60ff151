"""``python -m bench [name ...]``: run benchmarks side by side, then rewrite BENCHMARKS.md."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from bench.common import RESULTS, machine

BENCHMARKS = [
    "submission",
    "verification",
    "offline",
    "surveillance",
    "suppression",
    "tables",
    "witnesses",
    "plans",
    "transparency",
    "soak",
]


def main(argv: list[str]) -> int:
    chosen = argv or BENCHMARKS
    for name in chosen:
        print(f"== {name}", flush=True)
        made = importlib.import_module(f"bench.{name}").run()
        # a benchmark may measure several targets in one run (bench/verification.py)
        for measurement in made if isinstance(made, list) else [made]:
            measurement.save()
            print(f"-- {measurement.name}")
            verdict = {None: "", True: "met", False: "NOT met"}[measurement.met]
            print(json.dumps(measurement.figures, indent=2), verdict)
    write_report()
    return 0


REPORT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def _kept_sections(text: str) -> dict[str, list[str]]:
    """The sections of the current BENCHMARKS.md by benchmark name."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), [])
        if current is not None:
            current.append(line)
    return sections


def write_report() -> None:
    """BENCHMARKS.md from every saved result; a benchmark not run here keeps its section."""
    kept = _kept_sections(REPORT.read_text()) if REPORT.exists() else {}
    results = {path.stem: json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))}
    lines = [
        "# Benchmarks",
        "",
        "Measured ratios (SPEC §12), each side by side in one run on the same machine. "
        "Regenerate with `make bench` (or `.venv/bin/python -m bench NAME ...` for some); "
        "a section is rewritten from `bench/results/` when its benchmark runs and kept "
        "otherwise. Served endpoints are measured from outside: `wrk` (Debian package) on "
        "loopback against gunicorn under deploy/gunicorn.conf.py, on PostgreSQL, every server "
        "compared in the same run (bench/served.py, bench/peer.py). Profiles behind the notes: "
        "`.venv/bin/python -m bench.profile submission|verification`.",
        "",
        f"Machine: {json.dumps(machine())}",
        "",
    ]
    for name in sorted(set(kept) | set(results)):
        result = results.get(name)
        if result is None:
            lines += [*kept[name]]
            if lines[-1] != "":
                lines.append("")
            continue
        if result["met"] is None:  # a measurement that informs, with no target to judge
            target = f"Target: {result['target']}"
        else:
            target = f"Target: {result['target']} — **{'met' if result['met'] else 'NOT met'}**"
        lines += [
            f"## {result['name']}",
            "",
            target,
            "",
            "| figure | value |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v} |" for k, v in result["figures"].items()]
        lines += ["", f"Command: `{result['command']}`", ""]
        if result.get("notes"):
            lines += [result["notes"], ""]
    REPORT.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
