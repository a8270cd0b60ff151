"""``python -m bench.profile submission|verification [count]``: where the time of one request goes.

Runs the requests in process on a throwaway registry (SQLite, or ``BENCH_DATABASE_URL``) under
pyinstrument and prints the call tree: the profiles behind the notes in BENCHMARKS.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import date
from typing import Any

from pyinstrument import Profiler

from bench.common import throwaway_registry

FHIR = "application/fhir+json"


def _submissions(app: Any, count: int) -> Callable[[int], None]:
    from registry.examinations.examples import examination_bundle
    from tests.bundles import body
    from tests.support import World

    world = World(app)
    world.clinic("TJ-DUS-0007", accredited_from=date(2020, 1, 1))
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    client = app.test_client()
    texts = [body(examination_bundle(number=f"PROFILE-{i:06d}")) for i in range(count + 1)]

    def submit(i: int) -> None:
        response = client.post(
            "/api/v1/examinations", data=texts[i], headers=headers, content_type=FHIR
        )
        assert response.status_code == 201, response.json

    return submit


def _verifications(app: Any, _count: int) -> Callable[[int], None]:
    from tests.support import World
    from tests.verification.helpers import certificate, publish, qr_of

    world = World(app)
    publish(world)
    body = {"qr": qr_of(world, certificate(world, number="PROFILE-VERIFY"))}
    client = app.test_client()

    def verify(_i: int) -> None:
        response = client.post("/api/v1/verify", json=body)
        assert response.json["result"] == "valid", response.json

    return verify


SCENARIOS = {"submission": (_submissions, 40), "verification": (_verifications, 300)}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in SCENARIOS:
        print(f"usage: python -m bench.profile {'|'.join(SCENARIOS)} [count]", file=sys.stderr)
        return 2
    prepare, default = SCENARIOS[argv[0]]
    count = int(argv[1]) if len(argv) > 1 else default
    # the bench measures capacity, not the per-address allowance
    os.environ.setdefault("REGISTRY_VERIFY_RATE_LIMIT", "100000000 per minute")
    with throwaway_registry(os.environ.get("BENCH_DATABASE_URL")) as app:
        request = prepare(app, count)
        request(count)  # warm-up: imports, first connection, parsed rulesets
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for i in range(count):
            request(i)
        profiler.stop()
    print(
        profiler.output_text(
            unicode=True, color=False, show_all=bool(os.environ.get("BENCH_PROFILE_ALL"))
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
