"""A gunicorn worker killed under load loses no accepted submission.

The registry is set up as an operator would (``registry init``, ``clinic add``, ``clinic key
generate``, ``client add``) on a fresh PostgreSQL database and served by gunicorn with the
deployment's configuration (2 workers). Clinics submit from several threads; one worker is
killed with SIGKILL mid-load. Every submission answered 2xx must be stored exactly once and
whole; every other one (a dropped connection, a 5xx) must succeed when retried.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import create_engine, text

from registry.crypto.keys import load_private_jwk
from tests.bundles import body, examination_bundle
from tests.privacy_watch import example_persons, leaks
from tests.reliability.test_database_outage import _stored
from tests.support import ApiClient, token_form

ROOT = Path(__file__).resolve().parents[2]
BASE_URL = "http://registry.test"
DEADLINE = 90.0
SUBMISSIONS = 60
THREADS = 6


def _wait_for(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    until = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < until, f"no {what} within {deadline} s"
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _registry(environment: dict[str, str], *arguments: str) -> str:
    command = [str(Path(sys.executable).with_name("registry")), *arguments]
    done = subprocess.run(
        command, env=environment, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def operated(fresh_database: str, tmp_path: Path) -> tuple[dict[str, str], ApiClient]:
    """The environment of a registry set up with the command line, and a clinic's API client."""
    environment = {
        **os.environ,
        "REGISTRY_DATABASE_URL": fresh_database,
        "REGISTRY_KEYS_DIR": str(tmp_path / "keys"),
        "REGISTRY_BASE_URL": BASE_URL,
        "REGISTRY_WORKERS": "2",
        "REGISTRY_LOG_LEVEL": "info",
        "PYTHONPATH": str(ROOT),
    }
    _registry(environment, "init")
    _registry(
        environment,
        *("clinic", "add", "--id", "TJ-DUS-0007", "--name", "Dushanbe Migration Clinic"),
        *("--country", "TJ", "--purpose", "pre-departure", "--from", "2020-01-01"),
    )
    _registry(environment, "clinic", "key", "generate", "TJ-DUS-0007", "--custody", "custodial")
    key_file = tmp_path / "clinic-client.jwk.json"
    _registry(
        environment,
        *("client", "add", "--name", "Dushanbe clinic system", "--role", "clinic"),
        *("--clinic", "TJ-DUS-0007", "--out", str(key_file)),
    )
    secret = json.loads(key_file.read_text())
    client = ApiClient(
        id=secret["client_id"], role="clinic", key=load_private_jwk(secret), kid=secret["kid"]
    )
    return environment, client


class Gunicorn:
    """gunicorn with deploy/gunicorn.conf.py on a free loopback port; its stderr is kept."""

    def __init__(self, environment: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "deploy/gunicorn.conf.py",
                "registry.wsgi:app",
            ],
            env={**environment, "REGISTRY_BIND": f"127.0.0.1:{self.port}"},
            cwd=ROOT,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def healthy(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


@pytest.fixture
def server(operated: tuple[dict[str, str], ApiClient], tmp_path: Path) -> Iterator[Gunicorn]:
    running = Gunicorn(operated[0], tmp_path / "gunicorn.log")
    try:
        _wait_for(running.healthy, "answer on /healthz")
        _wait_for(lambda: len(running.workers()) == 2, "two workers")
        yield running
    finally:
        running.stop()


def test_a_worker_killed_under_load_loses_no_accepted_submission(
    server: Gunicorn, operated: tuple[dict[str, str], ApiClient], fresh_database: str
) -> None:
    _environment, client = operated
    status, raw = server.request(
        "POST",
        "/oauth/token",
        urlencode(token_form(client.assertion())).encode(),
        **{"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200, raw
    headers = {
        "Authorization": f"Bearer {json.loads(raw)['access_token']}",
        "Content-Type": "application/fhir+json",
    }

    def submit(number: str) -> int | str:
        try:
            return server.request(
                "POST", "/api/v1/examinations", body(examination_bundle(number=number)), **headers
            )[0]
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__  # the connection died with the worker

    assert submit("WARM-0") == 201  # the person exists; later submissions only add to it
    answers: dict[str, int | str] = {}
    lock = threading.Lock()
    pending = [f"LOAD-{n:03d}" for n in range(SUBMISSIONS)]
    victims: list[int] = []

    def drive() -> None:
        while True:
            with lock:
                if not pending:
                    return
                number = pending.pop(0)
            outcome = submit(number)
            with lock:
                answers[number] = outcome

    threads = [threading.Thread(target=drive) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        _wait_for(lambda: sum(a == 201 for a in list(answers.values())) >= 10, "accepted load")
        victims.append(server.workers()[0])
        os.kill(victims[0], signal.SIGKILL)
    finally:
        for thread in threads:
            thread.join(timeout=DEADLINE)
    assert len(answers) == SUBMISSIONS
    _wait_for(lambda: len(server.workers()) == 2 and victims[0] not in server.workers(), "respawn")

    accepted = {n for n, a in answers.items() if isinstance(a, int) and 200 <= a < 300}
    failed = set(answers) - accepted
    assert accepted, answers
    database = create_engine(fresh_database)
    try:
        with database.connect() as connection:
            per_number = dict(
                connection.execute(
                    text(
                        "SELECT identifier_value, count(*) FROM examinations "
                        "GROUP BY identifier_value"
                    )
                ).all()
            )
        assert all(per_number.get(number) == 1 for number in accepted), per_number
        for number in sorted(failed):
            retried = submit(number)
            expected = 200 if number in per_number else 201
            assert retried == expected, (number, answers[number], retried)
        shapes = _stored(database)
    finally:
        database.dispose()
    assert set(shapes) == {"WARM-0", *answers}
    assert len(set(shapes.values())) == 1, shapes  # each one whole: versions, results, certificates
    assert leaks(server.log.read_text("utf-8"), example_persons()) == []
