"""Soak: sustained verification and submission load through gunicorn, on loopback, bounded.

Target: zero 5xx (and zero dropped connections) over the whole run, and flat worker memory.
The bench prepares a throwaway registry (``BENCH_DATABASE_URL``, else a database of its own
on the loopback PostgreSQL server, dropped afterwards, else a SQLite file), starts
gunicorn with the deployment's configuration (2 workers, worker recycling switched off so a
leak cannot hide behind it) on a free loopback port, and for ``BENCH_SOAK_SECONDS`` (default
180) drives ``BENCH_SOAK_VERIFIERS`` threads verifying a QR code and ``BENCH_SOAK_CLINICS``
threads submitting new examinations, each on its own keep-alive connection. Every
``SAMPLE_SECONDS`` it records the workers' resident memory. Memory is flat when the mean of
the last third of the samples is within ``FLAT_MIB`` of the mean of the first third (taken
after a warm-up). The run stops by itself; nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import Measurement, median, percentile
from bench.served import Endpoint, gunicorn
from bench.served import worker_rss_mib as _worker_rss_mib
from bench.verification import BASE_URL, ROOT

WORKERS = 2

SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "180"))
VERIFIERS = int(os.environ.get("BENCH_SOAK_VERIFIERS", "4"))
CLINICS = int(os.environ.get("BENCH_SOAK_CLINICS", "2"))
WARM_UP = float(os.environ.get("BENCH_SOAK_WARM_UP", "20"))
SAMPLE_SECONDS = 5.0
FLAT_MIB = 10.0


@dataclass
class Tally:
    """Answers of one kind of request: status counts, latencies, dropped connections."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)  # monotonic time of each 2xx
    dropped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int | None, seconds: float) -> None:
        with self.lock:
            if status is None:
                self.dropped += 1
                return
            self.statuses[status] += 1
            if 200 <= status < 300:
                self.latencies.append(seconds)
                self.finished.append(time.monotonic())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


@contextmanager
def _database(folder: Path) -> Iterator[str]:
    """``BENCH_DATABASE_URL``, else a throwaway database on the loopback PostgreSQL server
    (production's store: SQLite serialises every writer), else a SQLite file."""
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        yield given
        return
    from tests.support import throwaway_postgres

    server = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    with ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_postgres(server, f"registry_soak_{os.getpid()}"))
        except Exception:  # no PostgreSQL here: the soak still runs, on SQLite
            url = f"sqlite:///{folder}/soak.sqlite3"
        yield url


def _prepare(folder: Path, url: str) -> tuple[dict[str, str], str, Any]:
    """A registry with a clinic, its API client and one certificate; environment, QR, client."""
    from registry import create_app
    from registry.schema import upgrade
    from tests.support import World
    from tests.verification.helpers import certificate, publish, qr_of

    upgrade(url)
    keys = folder / "keys"
    app = create_app(
        {"database_url": url, "keys_dir": keys, "base_url": BASE_URL}, create_keys=True
    )
    try:
        world = World(app)
        publish(world)
        qr = qr_of(world, certificate(world, number="SOAK-VERIFY"))
        clinic = world.api_client("clinic", clinic_id="TJ-DUS-0007")
    finally:
        app.extensions["registry"].db.engine.dispose()
    environment = {
        **os.environ,
        "REGISTRY_DATABASE_URL": url,
        "REGISTRY_KEYS_DIR": str(keys),
        "REGISTRY_BASE_URL": BASE_URL,
        "REGISTRY_VERIFY_RATE_LIMIT": "100000000 per minute",
        "REGISTRY_WORKERS": str(WORKERS),
        "REGISTRY_MAX_REQUESTS": "100000000",
        "REGISTRY_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
    }
    return environment, qr, clinic


@contextmanager
def _gunicorn(environment: dict[str, str], log: Path) -> Iterator[tuple[int, Any]]:
    """gunicorn on a free loopback port, all its output (access log too) to a file."""
    ready = Endpoint("registry", "GET", "/healthz")
    with gunicorn("registry.wsgi:app", environment, log=log, ready=ready, access_log=True) as run:
        yield run


def _token(port: int, clinic: Any) -> str:
    from tests.support import token_form

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(
        "POST",
        "/oauth/token",
        body=urlencode(token_form(clinic.assertion())),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"no token: {answer}")
    return str(answer["access_token"])


def _client(port: int, stop_at: float, tally: Tally, request: Any, refresh: Any = None) -> None:
    """One keep-alive connection sending ``request(i)`` (method, path, body, headers) in a loop."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    i = 0
    while time.monotonic() < stop_at:
        method, path, body, headers = request(i)
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status: int | None = response.status
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            status = None
        if status == 401 and refresh is not None:
            refresh()  # the access token expired during the run: not an error of the server
        else:
            tally.add(status, time.perf_counter() - started)
        i += 1
    connection.close()


def _per_minute(tally: Tally, started: float, duration: float) -> list[float]:
    """Answers per second in each whole minute of the run: degradation shows as a slope."""
    minutes = max(1, int(duration // 60))
    counts = [0] * minutes
    for moment in tally.finished:
        minute = int((moment - started) // 60)
        if minute < minutes:
            counts[minute] += 1
    return [round(c / 60, 1) for c in counts]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def run() -> Measurement:
    from sqlalchemy.engine import make_url

    from registry.examinations.examples import examination_bundle
    from tests.bundles import body

    verifying, submitting = Tally(), Tally()
    samples: list[tuple[float, list[float]]] = []
    with tempfile.TemporaryDirectory() as folder, _database(Path(folder)) as url:
        environment, qr, clinic = _prepare(Path(folder), url)
        verify_body = json.dumps({"qr": qr}).encode()
        with _gunicorn(environment, Path(folder) / "gunicorn.log") as (port, server):
            token = [_token(port, clinic)]
            token_lock = threading.Lock()

            def refresh() -> None:
                with token_lock:
                    token[0] = _token(port, clinic)

            def verification(_i: int) -> tuple[str, str, bytes, dict[str, str]]:
                return "POST", "/api/v1/verify", verify_body, {"Content-Type": "application/json"}

            def submission_of(thread: int) -> Any:
                def submission(i: int) -> tuple[str, str, bytes, dict[str, str]]:
                    bundle = examination_bundle(number=f"SOAK-{thread}-{i:07d}")
                    headers = {
                        "Content-Type": "application/fhir+json",
                        "Authorization": f"Bearer {token[0]}",
                    }
                    return "POST", "/api/v1/examinations", body(bundle), headers

                return submission

            started = time.monotonic()
            stop_at = started + SECONDS
            threads = [
                threading.Thread(target=_client, args=(port, stop_at, verifying, verification))
                for _ in range(VERIFIERS)
            ] + [
                threading.Thread(
                    target=_client, args=(port, stop_at, submitting, submission_of(n), refresh)
                )
                for n in range(CLINICS)
            ]
            for thread in threads:
                thread.start()
            workers_at_start: set[str] = set()
            pids: set[str] = set()
            while time.monotonic() < stop_at:
                time.sleep(SAMPLE_SECONDS)
                elapsed = time.monotonic() - started
                rss = _worker_rss_mib(server)
                children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
                pids = set(children.read_text().split())
                workers_at_start = workers_at_start or pids
                if elapsed >= WARM_UP:
                    samples.append((elapsed, rss))
            for thread in threads:
                thread.join()
            duration = time.monotonic() - started
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request(
                "POST",
                "/api/v1/verify",
                body=verify_body,
                headers={"Content-Type": "application/json"},
            )
            verdict = json.loads(connection.getresponse().read())["result"]
            connection.close()
            restarted = pids != workers_at_start
            log = (Path(folder) / "gunicorn.log").read_text(errors="replace")
    if not samples:
        raise RuntimeError(f"no memory samples: run longer than the {WARM_UP:g} s warm-up")
    third = max(1, len(samples) // 3)
    first = median([sum(rss) / len(rss) for _t, rss in samples[:third] if rss])
    last = median([sum(rss) / len(rss) for _t, rss in samples[-third:] if rss])
    growth = last - first
    errors = verifying.server_errors + submitting.server_errors
    dropped = verifying.dropped + submitting.dropped
    met = bool(
        errors == 0
        and dropped == 0
        and not restarted
        and growth <= FLAT_MIB
        and verdict == "valid"
        and verifying.latencies
        and submitting.latencies
    )
    return Measurement(
        name="soak",
        target=(
            f"sustained verification and submission load: zero 5xx, no dropped connection, "
            f"worker memory flat (growth <= {FLAT_MIB:g} MiB)"
        ),
        figures={
            "seconds": round(duration),
            "workers": WORKERS,
            "verifier_threads": VERIFIERS,
            "submitter_threads": CLINICS,
            "verifications": sum(verifying.statuses.values()),
            "submissions": sum(submitting.statuses.values()),
            "verify_per_s": round(sum(verifying.statuses.values()) / duration, 1),
            "submit_per_s": round(sum(submitting.statuses.values()) / duration, 1),
            "verify_per_s_by_minute": _per_minute(verifying, started, duration),
            "submit_per_s_by_minute": _per_minute(submitting, started, duration),
            "verify_statuses": dict(sorted(verifying.statuses.items())),
            "submit_statuses": dict(sorted(submitting.statuses.items())),
            "verify_result": verdict,
            "server_errors_5xx": errors,
            "dropped_connections": dropped,
            "worker_restarts": restarted,
            "verify_p50_ms": _ms(percentile(verifying.latencies, 50)),
            "verify_p99_ms": _ms(percentile(verifying.latencies, 99)),
            "submit_p50_ms": _ms(percentile(submitting.latencies, 50)),
            "submit_p99_ms": _ms(percentile(submitting.latencies, 99)),
            "rss_mib_first_third": round(first, 1),
            "rss_mib_last_third": round(last, 1),
            "rss_growth_mib": round(growth, 1),
            "rss_samples": len(samples),
            "error_lines_in_log": sum(1 for line in log.splitlines() if '"level": "error"' in line),
            "database": make_url(environment["REGISTRY_DATABASE_URL"]).get_backend_name(),
        },
        met=met,
        command="make bench  (or: .venv/bin/python -m bench soak)",
        notes=(
            "Memory is the mean resident size of the two workers, sampled every "
            f"{SAMPLE_SECONDS:g} s after a {WARM_UP:g} s warm-up; worker recycling "
            "(max_requests) is off for the run so that it cannot mask growth. The database "
            "grows with every submission (the audit chain and the examinations); what must "
            "not grow is the workers' memory. Throughput per minute shows degradation as a "
            "slope. On SQLite (one writer at a time) a verification, which writes an audit "
            "event and a holder log entry, queues behind submissions: over 3 minutes there "
            "verification fell to 5.3/s against 24/s over the first 30 s, with a p99 of 4 s, "
            "and still no 5xx; production runs on PostgreSQL, as this soak does by default."
        ),
    )
