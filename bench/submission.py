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
from bench.served import postgres_database

COUNT = int(os.environ.get("BENCH_SUBMISSIONS", "150"))
ROUNDS = int(os.environ.get("BENCH_SUBMISSION_ROUNDS", "5"))
# "same": every bundle names one person (a returning migrant, the headline figure);
# "distinct": each names a new person (its own passport; same name and birth date)
PERSONS = os.environ.get("BENCH_SUBMISSION_PERSONS", "same")


def run() -> Measurement:
    from registry.examinations.examples import examination_bundle
    from tests.bundles import body
    from tests.support import World

    template = examination_bundle()
    texts = []
    for i in range(COUNT + 3):
        if PERSONS == "distinct":
            texts.append(body(examination_bundle(number=f"BENCH-{i:06d}", passport=f"B{i:08d}")))
            continue
        template["identifier"]["value"] = f"BENCH-{i:06d}"
        texts.append(body(template))

    def bare(i: int) -> object:
        return Bundle.model_validate(json.loads(texts[i]))

    with (
        postgres_database("registry_bench_submission") as url,
        throwaway_registry(url) as app,
    ):
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
            "persons": PERSONS,
            "rounds": ROUNDS,
            "per_round": per_round,
        },
        met=ratio >= 0.40,
        command="make bench  (or: .venv/bin/python -m bench submission)",
        notes=(
            f"Median of {ROUNDS} alternating rounds (the machine is shared; the range shows the "
            "spread), on PostgreSQL (a throwaway database on the loopback server, or "
            "BENCH_DATABASE_URL). What is timed: on the app side the whole request in process "
            "through Flask's test client (bearer token and its SELECT, body limits, FHIR "
            "structure and our profile checks, the custodial ES256 signature, person matching, "
            "AES-GCM sealing, three SMART Health Cards, surveillance counts, audit events, log "
            "leaves, the commit and the receipt); on the other `Bundle.model_validate("
            "json.loads(text))` of the same bytes; neither side crosses a network. Every bundle "
            "names the same person (a returning migrant: the person is found and, unchanged, "
            "not written); with BENCH_SUBMISSION_PERSONS=distinct each names a new person (its "
            "own passport, the same name and birth date, so each also gets proposed matches): "
            "0.097 (0.090 to 0.121) after issue 17, 0.072 (0.071 to 0.075) before, same day. "
            "Before issue 17 (main at 7a2b83c, this harness): 41.1 submissions/s against 504 "
            "bare parses/s, ratio 0.082 (0.080 to 0.084), rerun the same day 0.085 (0.083 to "
            "0.088); 31 statements and 4 savepoint round trips a submission, about 22 ms of CPU "
            "and 27 to 37 ms of wall time. Issue 17: 14 statements and no savepoint (the clinic "
            "with its history and keys in one SELECT; the person with its documents' holders in "
            "one SELECT, not sealed again when unchanged, and those holders reused as the "
            "linkage candidates; the examination, certificates, proposed matches and added "
            "documents inserted with ON CONFLICT DO NOTHING instead of savepoints; the version, "
            "results, certificates and cards written with Core statements instead of the ORM "
            "flush; rows the subscribers of an event only write (the tally, audit events and "
            "all seven log leaves) staged and written in one INSERT per table when the event is "
            "handled; no read for the tally of a version just stored), the custodial key opened "
            "once per process, and parsing without repeated work (the JSON decoder built once, "
            "the NUL walk only when the text can spell one, Reference fields read once per FHIR "
            "class). Where the time goes now (process time per submission, each step wrapped, "
            "150 submissions, PostgreSQL): 12.8 ms of CPU and 15.2 ms of wall time in all; "
            "FHIR parsing and our profile checks 3.1 ms (the bare R4B model alone 1.9 ms: the "
            "other side of the ratio, paid here too); three certificates 3.0 ms (rulesets "
            "SELECT, six verdicts, three cards signed and sealed, two INSERTs, their events); "
            "the version 1.3 ms (canonical JSON, custodial signature, sealing, two INSERTs); "
            "bearer token 0.8 ms; clinic 0.7 ms; person 0.6 ms; surveillance upsert 0.5 ms; "
            "the staged INSERTs 0.6 ms; examination lookup and insert 0.7 ms; commit 0.1 ms "
            "(0.6 ms wall); Flask, werkzeug and flask-smorest around the view the remaining "
            "~2 ms. A new person adds about 2.5 ms (its rows through the ORM flush, the "
            "name-key proposals). Not met, and why: 0.4 means about 5 ms a submission, and "
            "parsing plus our checks take 3.1 ms of it before anything is stored; the other "
            "~10 ms are the 14 statements (each 0.3 to 0.5 ms of SQLAlchemy and psycopg work "
            "plus the round trip), the three cards and the request machinery. What would come "
            "next: all writes in one statement of data-modifying CTEs as verification does, the "
            "clinic and rulesets cached by data version, the new person written with Core "
            "statements, and the request served without the ORM session."
        ),
    )
