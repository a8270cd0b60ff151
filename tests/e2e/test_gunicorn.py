"""End to end over HTTP: real gunicorn, two workers, PostgreSQL, Redis, the deployment's config.

The registry is set up as an operator would (``registry init``, ``clinic add``, ``clinic key
generate``, ``client add``) on a fresh PostgreSQL database, served by gunicorn with
``deploy/gunicorn.conf.py`` (two workers, Prometheus multiprocess directory, rate limits in
Redis) on a free loopback port. Then, as the clinic, the employer and the ministry would: a
token, a signed submission, the certificate's PDF and card, a verification, a revocation, a
second verification, a surveillance extract and the metrics. The server's output is read as it
comes, so waiting is on its log lines, never on a clock.

Setting the registry up and booting gunicorn is most of the cost, so the module's tests share
one: neither counts on the other having run, nor on it not having run.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from sqlalchemy.engine import make_url

from registry.certificates import shc
from registry.crypto import jws
from registry.crypto.keys import load_private_jwk, load_public_jwk
from tests.bundles import body, examination_bundle, signed
from tests.privacy_watch import example_persons, leaks
from tests.reliability.test_worker_killed import _free_port, _registry
from tests.support import ApiClient, throwaway_postgres, token_form

ROOT = Path(__file__).resolve().parents[2]
BASE_URL = "http://registry.test"
DEADLINE = 45.0  # seconds for the server to come up, and for any log line to appear
CLINIC = "TJ-DUS-0007"
REDIS = os.environ.get("REGISTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the end-to-end test: Redis at {REDIS}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS}: {exc}")
    return REDIS


def _client(environment: dict[str, str], folder: Path, role: str, *options: str) -> ApiClient:
    """``registry client add`` with a generated key pair, as an operator registers a client."""
    key_file = folder / f"{role}-client.jwk.json"
    _registry(
        environment,
        *("client", "add", "--name", f"{role} system", "--role", role, "--out", str(key_file)),
        *options,
    )
    secret = json.loads(key_file.read_text())
    return ApiClient(
        id=secret["client_id"], role=role, key=load_private_jwk(secret), kid=secret["kid"]
    )


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[str]:
    """A database of the module's own on the test server, dropped after its tests."""
    server = make_url(postgres_url).set(database="postgres").render_as_string(hide_password=False)
    with throwaway_postgres(server, f"registry_e2e_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="module")
def operated(
    database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, str], dict[str, ApiClient], tuple[str, Any]]:
    """The environment of a registry set up with the command line; its clients; a clinic key."""
    tmp_path = tmp_path_factory.mktemp("operated")
    environment = {
        **os.environ,
        "REGISTRY_DATABASE_URL": database,
        "REGISTRY_KEYS_DIR": str(tmp_path / "keys"),
        "REGISTRY_BASE_URL": BASE_URL,
        "REGISTRY_RATELIMIT_STORAGE": redis_url,
        "REGISTRY_WORKERS": "2",
        "REGISTRY_LOG_LEVEL": "info",
        # as under systemd: the operator's commands run with the server's environment
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "PYTHONPATH": str(ROOT),
    }
    _registry(environment, "init")
    _registry(
        environment,
        *("clinic", "add", "--id", CLINIC, "--name", "Dushanbe Migration Clinic"),
        *("--country", "TJ", "--purpose", "pre-departure", "--from", "2020-01-01"),
    )
    # a clinic-held key: the clinic signs its bundles itself, as `registry sign` does
    key_file = tmp_path / "clinic-signing.jwk.json"
    with ThreadPoolExecutor(3) as pool:  # independent commands, side by side
        key = pool.submit(
            _registry,
            environment,
            *("clinic", "key", "generate", CLINIC, "--custody", "clinic-held"),
            *("--out", str(key_file)),
        )
        clinic = pool.submit(_client, environment, tmp_path, "clinic", "--clinic", CLINIC)
        ministry = pool.submit(_client, environment, tmp_path, "ministry", "--country", "TJ")
        key.result()
        clients = {"clinic": clinic.result(), "ministry": ministry.result()}
    secret = json.loads(key_file.read_text())
    return environment, clients, (secret["kid"], load_private_jwk(secret))


class Server:
    """gunicorn with deploy/gunicorn.conf.py on a free port; its output read line by line."""

    def __init__(self, environment: dict[str, str]) -> None:
        self.port = _free_port()
        self.lines: list[str] = []
        self._arrived = threading.Condition()
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
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._arrived:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._arrived.notify_all()
        with self._arrived:
            self._arrived.notify_all()

    def wait_for(self, condition: Callable[[list[str]], bool], what: str) -> None:
        """Until ``condition(lines)`` holds; fails after DEADLINE or when gunicorn exits."""
        with self._arrived:
            reached = self._arrived.wait_for(
                lambda: condition(self.lines) or self.process.poll() is not None, timeout=DEADLINE
            )
            assert reached and condition(self.lines), f"no {what}:\n" + "\n".join(self.lines[-40:])

    def access(self) -> list[dict[str, Any]]:
        """The JSON access-log lines so far."""
        with self._arrived:
            return [json.loads(line) for line in self.lines if line.startswith('{"time"')]

    def request(
        self, method: str, path: str, data: bytes | None = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _booted(count: int) -> Callable[[list[str]], bool]:
    return lambda lines: sum("Booting worker" in line for line in lines) >= count


@pytest.fixture(scope="module")
def server(operated: tuple[dict[str, str], Any, Any]) -> Iterator[Server]:
    running = Server(operated[0])
    try:
        running.wait_for(_booted(2), "two gunicorn workers booted")
        ready: list[int] = []

        def answers_ready(_lines: list[str]) -> bool:
            # asked again whenever gunicorn writes a line, until the deadline
            try:
                ready.append(running.request("GET", "/readyz")[0])
            except OSError:
                return False
            return ready[-1] == 200

        running.wait_for(answers_ready, "200 from /readyz")
        yield running
    finally:
        running.stop()


def _sample(exposition: str, name: str, **labels: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels}")


def test_a_certificate_goes_from_submission_to_revocation_through_gunicorn(
    server: Server, operated: tuple[dict[str, str], dict[str, ApiClient], tuple[str, Any]]
) -> None:
    environment, clients, (kid, clinic_key) = operated
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    # the clinic's system gets a token with a private_key_jwt client assertion
    status, _headers, raw = server.request(
        "POST",
        "/oauth/token",
        urlencode(token_form(clients["clinic"].assertion())).encode(),
        **form,
    )
    assert status == 200, raw
    token = json.loads(raw)
    assert token["token_type"].lower() == "bearer" and token["expires_in"] > 0
    clinic = {"Authorization": f"Bearer {token['access_token']}"}

    # a bundle signed with the clinic-held key, of an examination last month (a closed month,
    # so that it is in the surveillance extract below)
    last_month = datetime.now(UTC).date().replace(day=1) - timedelta(days=5)
    bundle = signed(examination_bundle(number="E2E-1", examined_on=last_month), clinic_key, kid)
    status, headers, raw = server.request(
        "POST",
        "/api/v1/examinations",
        body(bundle),
        **clinic,
        **{"Content-Type": "application/fhir+json", "X-Request-ID": "e2e-submit-1"},
    )
    assert status == 201, raw
    receipt = json.loads(raw)
    assert (receipt["custodial"], receipt["signing_kid"], receipt["version"]) == (False, kid, 1)
    assert headers["X-Request-ID"] == "e2e-submit-1"
    issued = {a["destination"]: a["certificate_id"] for a in receipt["assessments"] if a["met"]}
    certificate_id = issued["KZ"]

    # the certificate on paper, and its SMART Health Card
    status, headers, pdf = server.request(
        "GET", f"/api/v1/certificates/{certificate_id}/certificate.pdf", **clinic
    )
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert pdf.startswith(b"%PDF-") and len(pdf) > 5000
    status, _headers, raw = server.request(
        "GET", f"/api/v1/certificates/{certificate_id}/card.smart-health-card", **clinic
    )
    assert status == 200
    (card,) = json.loads(raw)["verifiableCredential"]
    qr = shc.qr_payload(card)

    # an employer verifies the QR, anonymously
    def verify() -> dict[str, Any]:
        status, _headers, raw = server.request(
            "POST",
            "/api/v1/verify",
            json.dumps({"qr": qr}).encode(),
            **{"Content-Type": "application/json"},
        )
        assert status == 200, raw
        answer: dict[str, Any] = json.loads(raw)
        return answer

    valid = verify()
    assert valid["result"] == "valid"
    assert valid["certificate"]["id"] == certificate_id
    assert valid["certificate"]["destination"] == "KZ"
    assert valid["clinic"]["id"] == CLINIC
    assert valid["holder"]["name"] == "Karimov Rustam Saidovich"
    # the receipt is the registry's signature over the answer, checkable with the published
    # document key (never one of the card keys of /.well-known/jwks.json)
    status, _headers, raw = server.request("GET", "/.well-known/registry-keys.json")
    published = {k["kid"]: k for k in json.loads(raw)["keys"] if k["purpose"] == "document"}
    status, _headers, raw = server.request("GET", "/.well-known/jwks.json")
    assert not set(published) & {k["kid"] for k in json.loads(raw)["keys"]}
    receipt_kid = jws.read_header(valid["receipt"])["kid"]
    assert published[receipt_kid]["purpose"] == "document"
    signed_answer = json.loads(
        jws.verify(valid["receipt"], load_public_jwk(published[receipt_kid]))
    )
    assert signed_answer["result"] == "valid"

    # the clinic revokes it; the next verification says so
    status, _headers, raw = server.request(
        "POST",
        f"/api/v1/certificates/{certificate_id}/revoke",
        json.dumps({"reason": "issued to the wrong person"}).encode(),
        **clinic,
        **{"Content-Type": "application/json"},
    )
    assert status == 200, raw
    assert json.loads(raw)["status"] == "revoked"
    revoked = verify()
    assert revoked["result"] == "revoked"
    assert revoked["reason"] == "revoked by the issuing clinic or the registry"

    # the ministry of the origin country downloads its signed surveillance extract
    status, _headers, raw = server.request(
        "POST",
        "/oauth/token",
        urlencode(token_form(clients["ministry"].assertion())).encode(),
        **form,
    )
    assert status == 200, raw
    ministry = {"Authorization": f"Bearer {json.loads(raw)['access_token']}"}
    month = last_month.strftime("%Y-%m")
    url = f"/api/v1/surveillance/extract?granularity=month&from={month}"
    status, headers, pending = server.request("GET", url, **ministry)
    assert status == 202, pending  # the request never computes the year's suppression
    assert json.loads(pending)["error"] == "protection_pending"
    assert int(headers["Retry-After"]) > 0
    _registry(environment, "surveillance", "worker", "--once")  # what the worker does
    status, headers, extract = server.request("GET", url, **ministry)
    assert status == 200, extract
    signature = headers["X-Extract-Signature"]
    jws.verify_detached(
        signature, extract, load_public_jwk(published[jws.read_header(signature)["kid"]])
    )
    document = json.loads(extract)
    assert document["request"]["where"] == {"origin": "TJ"}
    examined = [c for c in document["cells"] if c["measure"] == "examined"]
    # one examination is below k: withheld, never published as 1
    assert examined and all(c["value"] in (None, 0) for c in examined)

    # requests go to both workers; the metrics add up whichever worker answers /metrics
    def clinics_served_by_two_workers(_lines: list[str]) -> bool:
        served = [e for e in server.access() if e["path"] == "/api/v1/clinics"]
        if len({e["pid"] for e in served}) >= 2:
            return True
        assert server.request("GET", "/api/v1/clinics")[0] == 200
        return False

    server.wait_for(clinics_served_by_two_workers, "/api/v1/clinics answered by both workers")
    status, _headers, raw = server.request("GET", "/metrics")
    assert status == 200
    metrics = raw.decode()
    # gunicorn writes a request's access-log line after its answer: wait for every line the
    # metrics counted before comparing the two
    counted = _sample(
        metrics,
        "registry_http_request_duration_seconds_count",
        endpoint="clinics.list_clinics",
        status="200",
    )

    def every_clinic_list_logged(_lines: list[str]) -> bool:
        return sum(e["path"] == "/api/v1/clinics" for e in server.access()) >= counted

    server.wait_for(every_clinic_list_logged, "access-log line for every /api/v1/clinics")
    clinic_lists = sum(e["path"] == "/api/v1/clinics" for e in server.access())
    assert _sample(metrics, "registry_submissions_total", outcome="accepted") == 1
    assert _sample(metrics, "registry_verifications_total", result="valid") == 1
    assert _sample(metrics, "registry_verifications_total", result="revoked") == 1
    assert _sample(metrics, "registry_surveillance_extract_seconds_count", format="json") == 1
    assert (
        _sample(
            metrics,
            "registry_http_request_duration_seconds_count",
            endpoint="clinics.list_clinics",
            status="200",
        )
        == clinic_lists
    )
    assert _sample(metrics, "registry_db_pool_connections", state="idle") >= 1

    # rate-limit state is in Redis, not in either worker
    store = redis.Redis.from_url(REDIS, decode_responses=True)
    assert any("verify" in key for key in store.scan_iter(match="*127.0.0.1*"))

    # the access log: JSON, the request id carried, no personal data in anything written
    (submitted,) = [e for e in server.access() if e["request_id"] == "e2e-submit-1"]
    assert (submitted["method"], submitted["path"], submitted["status"]) == (
        "POST",
        "/api/v1/examinations",
        201,
    )
    assert not [e for e in server.access() if re.search(r"[A-Z]{2}-\w{4}-\w{4}", e["path"])]
    assert leaks("\n".join(server.lines), example_persons()) == []


def _run(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("registry")), *arguments]
    return subprocess.run(
        command, env=environment, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_a_witness_and_a_monitor_follow_the_log_over_http(
    server: Server,
    operated: tuple[dict[str, str], dict[str, ApiClient], tuple[str, Any]],
    tmp_path: Path,
) -> None:
    """The operator's commands as a ministry would run them, against gunicorn over HTTP."""
    environment = operated[0]
    url = f"http://127.0.0.1:{server.port}"
    _registry(environment, "log", "sequence", "--once")
    state = tmp_path / "witness"
    first = _run(environment, "log", "witness", "--state", str(state), "--name", "w.test/1", url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "accepted and cosigned, but the registry did not take the cosignature" in first.stdout
    # the registry accepts cosignatures from a witness it knows, and serves them
    vkey = first.stderr.strip().splitlines()[-1]
    _registry(environment, "log", "witness-add", vkey)
    again = _run(environment, "log", "witness", "--state", str(state), "--name", "w.test/1", url)
    assert again.returncode == 0, again.stdout + again.stderr
    status, _headers, note = server.request("GET", "/log/checkpoint")
    assert status == 200 and "\u2014 w.test/1 " in note.decode()
    # an accreditor's monitor sees the clinic's accreditation and key
    monitor = _run(environment, "log", "monitor", "--country", "TJ", url)
    assert monitor.returncode == 0, monitor.stdout + monitor.stderr
    assert f"clinic.status clinic={CLINIC}" in monitor.stdout
    assert f"clinic.key clinic={CLINIC}" in monitor.stdout
    # and the log verifies against what the witness accepted
    verified = _run(environment, "log", "verify", "--witness-state", str(state))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "log intact" in verified.stdout
