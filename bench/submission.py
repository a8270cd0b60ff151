"""Submissions per second through the app versus bare fhir.resources parsing of the same bundles.

SPEC §12 target: submission at least 40 % of bare parsing. Both sides get the same bundles (one
clinic, distinct examination numbers); the app side runs the whole request in process: token
check, JSON, profile validation, custodial ES256 signature, person matching through the blind
index, AES-GCM sealing, the audit chain and the commit.
"""

from __future__ import annotations

import json
import os
from datetime import date

from fhir.resources.R4B.bundle import Bundle

from bench.common import Measurement, median, rate, throwaway_registry

COUNT = int(os.environ.get("BENCH_SUBMISSIONS", "150"))
ROUNDS = int(os.environ.get("BENCH_SUBMISSION_ROUNDS", "5"))


def run() -> Measurement:
    from registry.examinations.examples import examination_bundle
    from tests.bundles import body
    from tests.support import World

    template = examination_bundle()
    texts = []
    for i in range(COUNT + 3):
        template["identifier"]["value"] = f"BENCH-{i:06d}"
        texts.append(body(template))

    def bare(i: int) -> object:
        return Bundle.model_validate(json.loads(texts[i]))

    with throwaway_registry(os.environ.get("BENCH_DATABASE_URL")) as app:
        world = World(app)
        world.clinic("TJ-DUS-0007", accredited_from=date(2020, 1, 1))
        headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
        client = app.test_client()

        def through_app(i: int) -> object:
            response = client.post(
                "/api/v1/examinations",
                data=texts[i],
                headers=headers,
                content_type="application/fhir+json",
            )
            assert response.status_code == 201, response.json
            return response

        through_app(len(texts) - 1)  # warm-up: imports, first connection, terminology
        bare(0)
        # alternating rounds, so that other work on the (shared) machine weighs on both alike
        per_round = max(1, COUNT // ROUNDS)
        bare_rates, app_rates = [], []
        for round_ in range(ROUNDS):
            offset = round_ * per_round
            bare_rates.append(rate(lambda i, at=offset: bare(at + i), count=per_round, repeats=1))
            app_rates.append(
                rate(lambda i, at=offset: through_app(at + i), count=per_round, repeats=1)
            )
        backend = app.extensions["registry"].db.dialect
    ratios = [a / b for a, b in zip(app_rates, bare_rates, strict=True)]
    ratio = median(ratios)
    bare_rate, app_rate = median(bare_rates), median(app_rates)
    return Measurement(
        name="submission",
        target="submission >= 40 % of bare fhir.resources parsing",
        figures={
            "bundle_bytes": len(texts[0]),
            "bare_parse_per_s": round(bare_rate, 1),
            "submissions_per_s": round(app_rate, 1),
            "ratio": round(ratio, 3),
            "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
            "database": backend,
            "rounds": ROUNDS,
            "per_round": per_round,
        },
        met=ratio >= 0.40,
        command="make bench  (or: .venv/bin/python -m bench submission)",
        notes=(
            f"Median of {ROUNDS} alternating rounds (the machine is shared; the range shows the "
            "spread). Where the time of one submission goes (pyinstrument, `.venv/bin/python -m "
            "bench.profile submission`, 40 submissions, SQLite): FHIR parsing and our profile "
            "checks ~26 % (the bare R4B model alone ~17 %), certificate issuance for three "
            "destinations ~22 % (the ORM flush of three certificates and their cards under one "
            "savepoint ~8 %, three ES256 cards ~5 %, their three audit events in one INSERT "
            "~2 %), the version with its sealed bundle, eight sealed results and the surveillance "
            "counts ~20 % (counts ~7 %, the ORM flush ~6 %), person matching through the blind "
            "index ~7 %, loading the clinic with its keys and history ~7 %, the bearer check "
            "~5 %. Done since the previous figures: one savepoint and one audit INSERT for all of "
            "an examination's certificates instead of a savepoint, an id read and an audit event "
            "with its own head read each; audit appends without an ORM flush, reading the chain's "
            "head once per transaction (tests/test_statements.py holds the statement counts). "
            "What stands in the way: our parsing alone costs about 1.5x the bare parse (the "
            "profile checks and reference walk on top of the model), so 40 % would leave about "
            "one bare parse of time for everything else a submission must do in its one atomic "
            "transaction (SPEC §9): a custodial ES256 signature, three ES256 cards, AES-GCM "
            "sealing of bundle, results and holders, blind-index matching, the audit chain and "
            "the surveillance counts. Through the SQLAlchemy ORM that is about 4x the bare parse "
            "today. Getting within the target would take writing the submission with Core "
            "statements instead of the ORM unit of work and a cheaper profile check; issuing "
            "cards after the request would be faster still but gives up the atomicity §9 asks."
            " On this shared two-core machine (colleagues' test runs alongside) the ratio moves "
            "by more than these changes between runs, see ratio_range; the statement counts are "
            "the steadier measure of them."
        ),
    )
