"""Verification, published documents and worker scaling, measured from outside with ``wrk``.

One run on PostgreSQL (a throwaway database on the loopback server, or ``BENCH_DATABASE_URL``):
a registry with one accredited clinic and one certificate; three gunicorn servers under
``deploy/gunicorn.conf.py`` (the registry with 2 workers, the same registry with 4, and the
minimal peer verifier of ``bench/peer.py`` with 2); ``wrk`` drives one endpoint at a time, every
endpoint once per round, rounds alternating so that other work on the (shared, two-core)
machine weighs on all of them alike. Figures are medians over the rounds with their ranges;
every ratio is taken within a round and then its median and range reported.

SPEC §12 and issue targets:
- ``POST /api/v1/verify`` (QR, and certificate number + birth date) >= 0.5 x the peer verifier,
  while checking revocation and accreditation, writing the holder's log and the audit leaf
  and answering with the signed receipt;
- ``/api/v1/trust-list``, ``/.well-known/jwks.json`` and ``registry-keys.json`` >= 0.5 x
  ``/healthz`` of the same server;
- with 4 workers, verification throughput not below 2 workers'.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.common import Measurement, median
from bench.served import (
    CONNECTIONS,
    ROOT,
    WRK_THREADS,
    Endpoint,
    Result,
    gunicorn,
    postgres_cpu_seconds,
    postgres_database,
    request,
    server_cpu_seconds,
    worker_rss_mib,
    wrk,
)

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))  # per endpoint and round
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "9"))  # rounds swing on a shared machine
BASE_URL = "http://registry.test"
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
COMMAND = "make bench  (or: .venv/bin/python -m bench verification)"
# The same harness run on main before issue 17 (commit e321a42), same machine, same day.
BEFORE_VERIFICATION = (
    "Before (main at e321a42, this harness): QR 86.9/s (range 70.4 to 146.9), number + birth "
    "date 75.1/s (52.0 to 87.1), peer 1,440.8/s (1,200.4 to 2,921.1); ratio QR 0.072 (0.024 "
    "to 0.102), number 0.048 (0.028 to 0.055); p99 230 ms (QR). Then (main at 7a2b83c): QR "
    "349.5/s, number 311.0/s, peer 1,659.3/s; ratio QR 0.193 (0.187 to 0.429), number 0.251 "
    "(0.1 to 0.428): 2 round trips a verification (an autocommit read; the audit event, its "
    "leaf and the holder's log in one statement, durable when answered), 3 by number. Now: "
    "the plain request (a JSON body, no token) is answered by a small WSGI handler in front "
    "of Flask (registry/verification/endpoint.py: the same allowance in Redis, answer, headers, "
    "request id and metrics; every refusal and anything else goes on to the documented Flask "
    "route), the statements run on an autocommit connection without an ORM session, the "
    "number form reads once (2 round trips), and canonical JSON checks its input cheaper. "
    "In-process CPU per QR verification (PostgreSQL, 1,000 in a row, time.process_time): "
    "2.3 ms before, 1.65 to 1.75 ms now (Flask's own /healthz: 0.18 ms). Where it goes "
    "(cProfile shares): the read 19 %, the write statement 13 % and the audit event's row "
    "and commitment 6 %, the rate limit's Redis round trip 10 %, the connection's checkout "
    "and return 7.5 %, the receipt 14 % (marshmallow dump 7 %, ES256 signature 3 %), the card "
    "(QR digits, ES256 check, inflate, claims) 10 %, the holder (decryption, photo token) "
    "6 %, the handler's JSON in and out 6 %. What stands between this and 0.5 x the peer: "
    "*_server_cpu_ms above, the gunicorn server's CPU per request: the peer's is gunicorn's "
    "gthread overhead (about 0.45 ms) plus one ES256 check; a verification adds about 1.7 ms "
    "of Python and PostgreSQL adds postgres_cpu_ms_per_verification. On two cores that every "
    "process shares (and other work on this machine), the ratio is about the peer's CPU over "
    "the verification's: 0.5 would need the whole verification (read, durable write, receipt, "
    "rate limit) in about 0.1 ms of Python beyond the peer's, below the cost of its two "
    "statements' driver calls alone. peer_durable is the same peer writing one row per "
    "answer with an auto-committed INSERT before it answers (bench/peer.py, "
    "BENCH_PEER_DATABASE_URL): ratio_peer_durable_to_peer is what keeping any durable record "
    "per verification costs the minimal peer itself in the same run. REGISTRY_THREADS=4 "
    "for both servers (3 rounds of 2 s) "
    "changed neither rate: the workers are CPU-bound, not waiting on PostgreSQL. Worker model "
    "(deploy/gunicorn.conf.py), measured with the earlier Python-thread harness on SQLite: "
    "REGISTRY_WORKER_CLASS=sync answered /healthz 211/s and verify 44/s against gthread's "
    "1,112/s and 111/s; sync closes every connection, gthread keeps them alive."
)
BEFORE_PUBLISHED = (
    "Before (main at e321a42, this harness): trust list 0.038 of /healthz (0.022 to 0.056): "
    "rebuilt and re-signed per GET with issued_at = now; JWKS 0.179 (0.071 to 0.39): a "
    "GROUP BY over all revocations per GET; registry-keys.json 0.285 (0.225 to 0.597); no "
    "ETag, no 304. Now each is built once per data version (the version asked at most once a "
    "second per worker, REGISTRY_PUBLISHED_RECHECK_SECONDS), served as the same canonical "
    "bytes with a strong ETag and 304 on If-None-Match; the trust list carries list_version "
    "and is signed with deterministic ES256, so every worker serves the same bytes. What "
    "remains per GET is Flask and the shared public rate limit (two Redis round trips with "
    "its headers), which /healthz does not have."
)
BEFORE_SCALING = (
    "Before (main at e321a42, this harness): verify with 4 workers 0.971 x 2 workers (0.645 "
    "to 1.496), /healthz 0.735 (0.496 to 1.708). On two cores more workers than cores only "
    "help while requests wait on the database; wrk and PostgreSQL share the same two cores."
)


def _prepare(folder: Path, url: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A registry with one certificate: the servers' environment and what to present."""
    from registry import create_app
    from registry.schema import upgrade
    from tests.support import World
    from tests.verification.helpers import BIRTH_DATE, certificate, publish, qr_of

    upgrade(url)
    keys = folder / "keys"
    app = create_app(
        {"database_url": url, "keys_dir": keys, "base_url": BASE_URL}, create_keys=True
    )
    try:
        world = World(app)
        publish(world)
        issued = certificate(world, number="BENCH-VERIFY")
        presented = {
            "qr": qr_of(world, issued),
            "certificate_id": issued.id,
            "birth_date": BIRTH_DATE,
            "jwks": world.ctx.keystore.issuer_key_set(),
        }
    finally:
        app.extensions["registry"].db.engine.dispose()
    environment = {
        **os.environ,
        "REGISTRY_DATABASE_URL": url,
        "REGISTRY_KEYS_DIR": str(keys),
        "REGISTRY_BASE_URL": BASE_URL,
        # the bench measures capacity, not the per-address allowances
        "REGISTRY_VERIFY_RATE_LIMIT": "100000000 per minute",
        "REGISTRY_PUBLIC_RATE_LIMIT": "100000000 per minute",
        "REGISTRY_RATELIMIT_STORAGE": _ratelimit_storage(),
        "REGISTRY_MAX_REQUESTS": "100000000",
        "REGISTRY_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
        "BENCH_PEER_JWKS": json.dumps(presented["jwks"]),
    }
    return environment, presented


def _ratelimit_storage() -> str:
    """Rate-limit state where production keeps it (Redis), when this machine has one."""
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return "memory://"
    return REDIS


def _endpoints(presented: dict[str, Any]) -> dict[str, Endpoint]:
    qr = json.dumps({"qr": presented["qr"]})
    number = json.dumps(
        {"certificate_id": presented["certificate_id"], "birth_date": presented["birth_date"]}
    )
    return {
        "healthz": Endpoint("registry", "GET", "/healthz"),
        "peer": Endpoint("peer", "POST", "/", qr),
        "peer_durable": Endpoint("peer_durable", "POST", "/", qr),
        "verify_qr": Endpoint("registry", "POST", "/api/v1/verify", qr),
        "verify_number": Endpoint("registry", "POST", "/api/v1/verify", number),
        "trust_list": Endpoint("registry", "GET", "/api/v1/trust-list"),
        "jwks": Endpoint("registry", "GET", "/.well-known/jwks.json"),
        "registry_keys": Endpoint("registry", "GET", "/.well-known/registry-keys.json"),
        "healthz_4_workers": Endpoint("registry4", "GET", "/healthz"),
        "verify_qr_4_workers": Endpoint("registry4", "POST", "/api/v1/verify", qr),
    }


def _conditional(endpoints: dict[str, Endpoint], ports: dict[str, int]) -> None:
    """A revalidation of each published document, where the server gives it an ETag."""
    for name in ("trust_list", "jwks", "registry_keys"):
        endpoint = endpoints[name]
        _status, headers, _body = request(ports[endpoint.server], endpoint)
        etag = {k.lower(): v for k, v in headers.items()}.get("etag")
        if etag:
            endpoints[f"{name}_304"] = Endpoint(
                endpoint.server, "GET", endpoint.path, headers=(("If-None-Match", etag),)
            )


def _check(endpoints: dict[str, Endpoint], ports: dict[str, int]) -> dict[str, Any]:
    """Every endpoint answers as it should before it is measured; the verification answer."""
    answers: dict[str, Any] = {}
    for name, endpoint in endpoints.items():
        status, _headers, body = request(ports[endpoint.server], endpoint)
        expected = 304 if name.endswith("_304") else 200
        if status != expected:
            raise RuntimeError(f"{name}: {status} {body[:300]!r}")
        if endpoint.method == "POST":
            answers[name] = json.loads(body)
            if answers[name]["result"] != "valid":
                raise RuntimeError(f"{name}: {answers[name]}")
    return answers


def _ratio(results: dict[str, list[Result]], top: str, bottom: str) -> dict[str, Any]:
    ratios = [t.rate / b.rate for t, b in zip(results[top], results[bottom], strict=True)]
    return {
        "median": round(median(ratios), 3),
        "range": [round(min(ratios), 3), round(max(ratios), 3)],
    }


def _ratio_figures(name: str, ratio: dict[str, Any]) -> dict[str, Any]:
    return {f"ratio_{name}": ratio["median"], f"ratio_{name}_range": ratio["range"]}


def _figures(results: dict[str, list[Result]]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, runs in results.items():
        rates = [r.rate for r in runs]
        figures[f"{name}_per_s"] = round(median(rates), 1)
        figures[f"{name}_per_s_range"] = [round(min(rates), 1), round(max(rates), 1)]
        figures[f"{name}_p50_ms"] = median([r.p50_ms for r in runs])
        figures[f"{name}_p99_ms"] = median([r.p99_ms for r in runs])
        figures[f"{name}_errors"] = sum(r.errors for r in runs)
    return figures


def run() -> list[Measurement]:
    with tempfile.TemporaryDirectory() as folder_name, postgres_database("registry_bench") as url:
        folder = Path(folder_name)
        environment, presented = _prepare(folder, url)
        endpoints = _endpoints(presented)
        two = {**environment, "REGISTRY_WORKERS": "2"}
        four = {**environment, "REGISTRY_WORKERS": "4"}
        durable = {**two, "BENCH_PEER_DATABASE_URL": _peer_table(url)}
        health = Endpoint("", "GET", "/healthz")
        with (
            gunicorn("registry.wsgi:app", two, log=folder / "registry.log", ready=health) as (
                registry_port,
                registry,
            ),
            gunicorn("registry.wsgi:app", four, log=folder / "registry4.log", ready=health) as (
                registry4_port,
                _registry4,
            ),
            gunicorn("bench.peer:app", two, log=folder / "peer.log", ready=health) as (
                peer_port,
                peer,
            ),
            gunicorn("bench.peer:app", durable, log=folder / "durable.log", ready=health) as (
                durable_port,
                peer_durable,
            ),
        ):
            ports = {
                "registry": registry_port,
                "registry4": registry4_port,
                "peer": peer_port,
                "peer_durable": durable_port,
            }
            _conditional(endpoints, ports)
            answers = _check(endpoints, ports)
            for endpoint in endpoints.values():  # warm every worker: imports, pools, caches
                wrk(ports[endpoint.server], endpoint, seconds=1, folder=folder)
            results: dict[str, list[Result]] = {name: [] for name in endpoints}
            database_ms: list[float] = []  # PostgreSQL CPU per verification, per round
            # the gunicorn server's own CPU per request (master and workers), per round
            server_ms: dict[str, list[float]] = {n: [] for n in SERVER_CPU}
            servers = {"registry": registry, "peer": peer, "peer_durable": peer_durable}
            for _round in range(ROUNDS):
                for name, endpoint in endpoints.items():
                    cpu = postgres_cpu_seconds()
                    server = servers.get(endpoint.server)
                    before = server_cpu_seconds(server) if server else 0.0
                    results[name].append(
                        wrk(ports[endpoint.server], endpoint, seconds=SECONDS, folder=folder)
                    )
                    count = results[name][-1].requests
                    if name == "verify_qr" and count:
                        used = postgres_cpu_seconds() - cpu
                        database_ms.append(1000 * used / count)
                    if name in server_ms and server and count:
                        used = server_cpu_seconds(server) - before
                        server_ms[name].append(1000 * used / count)
            rss = worker_rss_mib(registry)
    return _measurements(results, answers, environment, rss, database_ms, server_ms)


# whose server CPU per request is reported: the peer's and the two verifications'
SERVER_CPU = ("peer", "peer_durable", "verify_qr", "verify_number")


def _peer_table(url: str) -> str:
    """The durable peer's table, in the benchmark's database; its libpq URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS peer_checks (id bigserial PRIMARY KEY, result text, "
            "issuer text, at timestamptz NOT NULL DEFAULT now())"
        )
    return libpq


def _measurements(
    results: dict[str, list[Result]],
    answers: dict[str, Any],
    environment: dict[str, str],
    rss: list[float],
    database_ms: list[float],
    server_ms: dict[str, list[float]],
) -> list[Measurement]:
    figures = _figures(results)
    setup = {
        "database": "postgresql",
        "load": f"wrk -t{WRK_THREADS} -c{CONNECTIONS}, {SECONDS:g} s per endpoint and round",
        "rounds": ROUNDS,
        "gunicorn": "deploy/gunicorn.conf.py, 2 gthread workers x 2 threads (4 for scaling)",
        "ratelimit_storage": environment["REGISTRY_RATELIMIT_STORAGE"].split(":", 1)[0],
    }
    verify_qr = _ratio(results, "verify_qr", "peer")
    verify_number = _ratio(results, "verify_number", "peer")
    verification = Measurement(
        name="verification",
        target="POST /api/v1/verify (QR, and number + birth date) >= 0.5 x the minimal peer "
        "verifier (bench/peer.py), same gunicorn configuration, same run",
        figures={
            **setup,
            **_ratio_figures("qr_to_peer", verify_qr),
            **_ratio_figures("number_to_peer", verify_number),
            # the peer writing one row per answer, durably: what any keeping of records costs
            **_ratio_figures("peer_durable_to_peer", _ratio(results, "peer_durable", "peer")),
            **{
                k: v
                for k, v in figures.items()
                if k.startswith(("peer", "verify_qr_p", "verify_qr_e", "verify_number"))
                or k.startswith("verify_qr_per")
            },
            "verify_result": answers["verify_qr"]["result"],
            "worker_rss_mib": rss,
            # CPU time of the PostgreSQL server per QR verification (an upper bound: the server
            # is shared), what docs/scaling.md's estimate of a primary's ceiling rests on
            "postgres_cpu_ms_per_verification": round(median(database_ms), 3),
            "postgres_cpu_ms_per_verification_range": [
                round(min(database_ms), 3),
                round(max(database_ms), 3),
            ],
            # CPU time of the gunicorn server (master and workers) per request: what the
            # ratio comes down to on a machine whose two cores every process shares
            **{
                f"{name}_server_cpu_ms": round(median(samples), 3)
                for name, samples in server_ms.items()
                if samples
            },
        },
        met=verify_qr["median"] >= 0.5 and verify_number["median"] >= 0.5,
        command=COMMAND,
        notes=BEFORE_VERIFICATION,
    )
    published_figures: dict[str, Any] = {**setup}
    met = True
    for name in ("trust_list", "jwks", "registry_keys"):
        ratio = _ratio(results, name, "healthz")
        met = met and ratio["median"] >= 0.5
        published_figures.update(_ratio_figures(f"{name}_to_healthz", ratio))
        if f"{name}_304" in results:
            ratio = _ratio(results, f"{name}_304", "healthz")
            published_figures.update(_ratio_figures(f"{name}_304_to_healthz", ratio))
    published_figures.update(
        {
            k: v
            for k, v in figures.items()
            if k.startswith(("healthz_", "trust_list", "jwks", "registry_keys"))
        }
    )
    published_figures = {k: v for k, v in published_figures.items() if "4_workers" not in k}
    published = Measurement(
        name="published",
        target="/api/v1/trust-list, /.well-known/jwks.json and registry-keys.json >= 0.5 x "
        "/healthz of the same server (full answers; revalidations with If-None-Match reported)",
        figures=published_figures,
        met=met,
        command=COMMAND,
        notes=BEFORE_PUBLISHED,
    )
    scaling_verify = _ratio(results, "verify_qr_4_workers", "verify_qr")
    scaling_health = _ratio(results, "healthz_4_workers", "healthz")
    scaling = Measurement(
        name="scaling",
        target="with 4 workers, verification throughput not below 2 workers' (same machine, "
        "same run)",
        figures={
            **setup,
            **_ratio_figures("verify_4_to_2_workers", scaling_verify),
            **_ratio_figures("healthz_4_to_2_workers", scaling_health),
            **{
                k: v
                for k, v in figures.items()
                if k.startswith(("verify_qr_per_s", "healthz_per_s")) or "4_workers" in k
            },
        },
        met=scaling_verify["median"] >= 1.0,
        command=COMMAND,
        notes=BEFORE_SCALING,
    )
    return [verification, published, scaling]
