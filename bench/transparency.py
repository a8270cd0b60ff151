"""The transparency-log sequencer: leaves integrated per second (SPEC §12: >= 10,000 leaves/s).

On PostgreSQL (REGISTRY_BENCH_DATABASE_URL, default the local server's `test` database, in a
throwaway database of its own): ROUNDS alternating rounds, each writing LEAVES entries the way
requests do (plain INSERTs, committed) and timing `integrate` over them: assigning the dense
indexes, appending the hashes to the tiles and signing one checkpoint per round of at most
20,000 leaves. Median and range over the rounds.
"""

from __future__ import annotations

import os
import time

from bench.common import Measurement, median, throwaway_registry
from registry.db import utcnow
from registry.transparency import log, sequencer, service

LEAVES = int(os.environ.get("BENCH_LOG_LEAVES", "50000"))
ROUNDS = int(os.environ.get("BENCH_LOG_ROUNDS", "5"))
SERVER = os.environ.get(
    "REGISTRY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def run() -> Measurement:
    from tests.support import throwaway_postgres  # the same throwaway database as the tests

    rates: list[float] = []
    server = SERVER.rsplit("/", 1)[0] + "/postgres"
    with (
        throwaway_postgres(server, f"bench_log_{os.getpid()}") as url,
        throwaway_registry(url) as app,
    ):
        ctx = app.extensions["registry"]
        signer = service.log_signer(ctx.settings, ctx.keystore)
        sequencer.integrate_all(ctx.db, signer)  # the rulesets' leaves of setting up
        for round_number in range(ROUNDS):
            now = utcnow()
            leaves = [
                log.leaf("audit", {"commitment": f"{round_number:04d}{n:060d}"})
                for n in range(LEAVES)
            ]
            with ctx.db.unit_of_work() as uow:
                for start in range(0, LEAVES, 5000):
                    log.append(uow.session, leaves[start : start + 5000], at=now)
                uow.commit()
            started = time.perf_counter()
            done = sequencer.integrate_all(ctx.db, signer)
            elapsed = time.perf_counter() - started
            assert done.integrated == LEAVES
            rates.append(LEAVES / elapsed)
    figure = median(rates)
    return Measurement(
        name="transparency",
        target="transparency-log sequencer >= 10,000 leaves/s (PostgreSQL)",
        figures={
            "leaves_per_second_median": round(figure),
            "leaves_per_second_min": round(min(rates)),
            "leaves_per_second_max": round(max(rates)),
            "leaves_per_round": LEAVES,
            "rounds": ROUNDS,
        },
        met=figure >= 10_000,
        command=".venv/bin/python -m bench transparency",
        notes="integrate = dense indexes (one UPDATE … FROM unnest), tiles (one upsert per "
        "changed tile), one signed checkpoint per 20,000 leaves; entries written beforehand as "
        "requests write them.",
    )
