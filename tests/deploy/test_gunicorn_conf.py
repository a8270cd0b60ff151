"""deploy/gunicorn.conf.py: settings from the environment, hooks, an access log without secrets."""

from __future__ import annotations

import json
import logging
import os
import runpy
import socket
import subprocess
import sys
import time
import types
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from gunicorn.config import Config

from .conftest import DEPLOY

CONF = DEPLOY / "gunicorn.conf.py"
# Functions the file defines for its own use; every other lower-case name must be a setting.
HELPERS = {"available_cores", "default_workers", "path_template"}
ENV_NAMES = (
    "REGISTRY_BIND",
    "REGISTRY_WORKERS",
    "REGISTRY_WORKER_CLASS",
    "REGISTRY_THREADS",
    "REGISTRY_TIMEOUT",
    "REGISTRY_GRACEFUL_TIMEOUT",
    "REGISTRY_KEEPALIVE",
    "REGISTRY_MAX_REQUESTS",
    "REGISTRY_FORWARDED_ALLOW_IPS",
    "REGISTRY_LOG_LEVEL",
    "PROMETHEUS_MULTIPROC_DIR",
)


@pytest.fixture
def load(monkeypatch):
    """Execute the config file with the given environment; returns its namespace."""

    def run(**env: str) -> dict:
        for name in ENV_NAMES:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(CONF))

    return run


def _settings(namespace: dict) -> dict:
    imported = {"annotations", "datetime", "urlsplit"}
    return {
        name: value
        for name, value in namespace.items()
        if name[0].islower()
        and name not in HELPERS | imported
        and not isinstance(value, types.ModuleType)
    }


def test_every_setting_is_one_gunicorn_knows_and_accepts(load):
    settings = _settings(load())
    cfg = Config()
    unknown = set(settings) - set(cfg.settings)
    assert unknown == set()
    for name, value in settings.items():
        cfg.set(name, value)  # runs gunicorn's own validators
    assert cfg.worker_class_str == "gthread"
    assert cfg.preload_app is True


def test_defaults_listen_locally_with_threaded_workers(load):
    conf = load()
    assert conf["bind"] == ["127.0.0.1:8000"]
    assert conf["worker_class"] == "gthread"
    assert conf["threads"] == 2
    assert conf["workers"] == conf["default_workers"](conf["available_cores"]())
    assert conf["preload_app"] is True
    assert conf["keepalive"] > 60, "must outlive nginx's upstream keepalive_timeout (60 s)"
    assert conf["forwarded_allow_ips"] == "127.0.0.1,::1"
    assert conf["secure_scheme_headers"] == {"X-FORWARDED-PROTO": "https"}
    assert conf["control_socket_disable"] is True


def test_limits_and_recycling_are_set(load):
    conf = load()
    assert conf["max_requests"] == 2000
    assert 0 < conf["max_requests_jitter"] < conf["max_requests"]
    assert conf["timeout"] == 30
    assert conf["graceful_timeout"] == 30
    assert conf["limit_request_line"] == 4094
    assert conf["limit_request_fields"] == 50
    assert conf["limit_request_field_size"] == 8190


def test_environment_overrides_every_knob(load):
    conf = load(
        REGISTRY_BIND="0.0.0.0:8000, [::]:8000",
        REGISTRY_WORKERS="7",
        REGISTRY_THREADS="4",
        REGISTRY_TIMEOUT="60",
        REGISTRY_GRACEFUL_TIMEOUT="20",
        REGISTRY_KEEPALIVE="90",
        REGISTRY_MAX_REQUESTS="500",
        REGISTRY_FORWARDED_ALLOW_IPS="*",
        REGISTRY_LOG_LEVEL="warning",
    )
    assert conf["bind"] == ["0.0.0.0:8000", "[::]:8000"]
    assert (conf["workers"], conf["threads"]) == (7, 4)
    assert (conf["timeout"], conf["graceful_timeout"], conf["keepalive"]) == (60, 20, 90)
    assert (conf["max_requests"], conf["max_requests_jitter"]) == (500, 50)
    assert conf["forwarded_allow_ips"] == "*"
    assert conf["loglevel"] == "warning"


def test_sync_workers_get_exactly_one_thread(load):
    # gunicorn would quietly switch to gthread if threads were above one.
    conf = load(REGISTRY_WORKER_CLASS="sync", REGISTRY_THREADS="8")
    assert (conf["worker_class"], conf["threads"]) == ("sync", 1)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REGISTRY_WORKERS": "0"}, "REGISTRY_WORKERS must be at least 1"),
        ({"REGISTRY_TIMEOUT": "30s"}, "REGISTRY_TIMEOUT must be a whole number"),
        ({"REGISTRY_WORKER_CLASS": "gevent"}, "REGISTRY_WORKER_CLASS must be one of"),
    ],
)
def test_nonsense_settings_stop_the_start(load, env, message):
    with pytest.raises(ValueError, match=message):
        load(**env)


def test_default_worker_count_is_two_per_core_plus_one_capped(load):
    default_workers = load()["default_workers"]
    assert [default_workers(n) for n in (1, 2, 4, 5, 64)] == [3, 5, 9, 11, 12]


def test_cpu_quota_of_the_container_bounds_the_core_count(load, tmp_path):
    available_cores = load()["available_cores"]
    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert available_cores(cpu_max) == min(affinity, 2)
    cpu_max.write_text("max 100000\n")
    assert available_cores(cpu_max) == affinity
    assert available_cores(tmp_path / "absent") == affinity


# --- the access log ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/h/q8Zt4mW2xVbN", "/h/<secret>"),
        ("/h/q8Zt4mW2xVbN/certificate.pdf", "/h/<secret>/certificate.pdf"),
        ("/h/", "/h/<secret>"),
        ("/api/v1/certificates/CERT7Hq9ZK2m/qr.svg", "/api/v1/certificates/<id>/qr.svg"),
        ("/api/v1/certificates/CERT7Hq9ZK2m/revoke", "/api/v1/certificates/<id>/revoke"),
        (
            "/api/v1/examinations/0b9f3c2e-1d2a-4c5b-9e8f-123456789abc/withdraw",
            "/api/v1/examinations/<id>/withdraw",
        ),
        ("/api/v1/authority/examinations/ex-77", "/api/v1/authority/examinations/<id>"),
        ("/fhir/Bundle/bundle-123", "/fhir/Bundle/<id>"),
        ("/api/v1/verify", "/api/v1/verify"),
        ("/api/v1/persons/lookup", "/api/v1/persons/lookup"),
        ("/fhir/metadata", "/fhir/metadata"),
        ("/.well-known/jwks.json", "/.well-known/jwks.json"),
        ("/some/new/route/4f9a8c7d12e0", "/some/new/route/<id>"),
        ("/h/secret?download=1", "/h/<secret>"),
        ("/verify?c=shc:/5676290952432060", "/verify"),
        ("https://registry.example.org/h/abc?x=1", "/h/<secret>"),
    ],
)
def test_path_template_hides_secrets_ids_and_query_strings(load, path, logged):
    assert load()["path_template"](path) == logged


class _Response:
    status = "200 OK"
    sent = 1234
    headers: list = []


def _access_line(conf: dict, environ: dict) -> dict:
    logger_class = conf["RegistryLogger"]
    atoms = logger_class.atoms(None, _Response(), None, environ, timedelta(milliseconds=42))
    line = conf["access_log_format"] % logger_class.atoms_wrapper_class(atoms)
    return json.loads(line)


def _environ(path: str, **extra: str) -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "holder=Aigerim%20Bekova",
        "RAW_URI": f"{path}?holder=Aigerim%20Bekova",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_USER_AGENT": "Mozilla/5.0",
        "HTTP_REFERER": "https://employer.example/candidates/42",
        "HTTP_AUTHORIZATION": "Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig",
        **extra,
    }


def test_access_log_line_is_json_with_only_harmless_fields(load):
    conf = load()
    line = _access_line(conf, _environ("/h/q8Zt4mW2xVbN", HTTP_X_REQUEST_ID="req-1.a_B"))
    assert set(line) == {
        "time",
        "request_id",
        "method",
        "path",
        "protocol",
        "status",
        "bytes",
        "duration_s",
        "pid",
    }
    assert line["path"] == "/h/<secret>"
    assert line["request_id"] == "req-1.a_B"
    assert (line["method"], line["status"], line["bytes"]) == ("GET", 200, 1234)
    assert line["duration_s"] == pytest.approx(0.042)
    assert line["pid"] == os.getpid()
    rendered = json.dumps(line)
    for personal in ("q8Zt4mW2xVbN", "Aigerim", "203.0.113", "Mozilla", "employer", "Bearer"):
        assert personal not in rendered


@pytest.mark.parametrize(
    "path", ['/a"b', "/back\\slash", "/ctrl\x01\x1f", "/юникод/ǅ", "/" + "x/" * 300]
)
def test_access_log_stays_valid_json_for_any_path(load, path):
    line = _access_line(load(), _environ(path, HTTP_X_REQUEST_ID='bad"id'))
    assert line["request_id"] == "-"
    assert len(line["path"]) <= 200


def test_logged_request_failures_do_not_carry_the_uri(load):
    conf = load()
    cfg = Config()
    cfg.set("logger_class", conf["logger_class"])
    logger = conf["RegistryLogger"](cfg)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.error_log.addHandler(handler)
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("Error handling request %s", "/h/q8Zt4mW2xVbN?x=1")
        logger.error("Error handling request %s %s", "POST", "/api/v1/certificates/CERT7Hq9ZK2m")
    finally:
        logger.error_log.removeHandler(handler)
    messages = [r.getMessage() for r in records]
    assert messages == [
        "Error handling request /h/<secret>",
        "Error handling request POST /api/v1/certificates/<id>",
    ]


# --- hooks ---------------------------------------------------------------------------------


def test_post_fork_disposes_the_engine_inherited_from_the_master(load, monkeypatch):
    disposed = []
    package = types.ModuleType("registry")
    package.__path__ = []
    db = types.ModuleType("registry.db")
    db.dispose_engine = lambda: disposed.append(True)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "registry", package)
    monkeypatch.setitem(sys.modules, "registry.db", db)
    load()["post_fork"](server=None, worker=None)
    assert disposed == [True]


def test_post_fork_does_nothing_without_a_database_module(load, monkeypatch):
    monkeypatch.setitem(sys.modules, "registry.db", None)
    load()["post_fork"](server=None, worker=None)


def test_post_fork_fails_loudly_when_dispose_engine_is_missing(load, monkeypatch):
    package = types.ModuleType("registry")
    package.__path__ = []
    monkeypatch.setitem(sys.modules, "registry", package)
    monkeypatch.setitem(sys.modules, "registry.db", types.ModuleType("registry.db"))
    with pytest.raises(ImportError, match="dispose_engine"):
        load()["post_fork"](server=None, worker=None)


def test_child_exit_marks_the_worker_dead_for_prometheus(load, monkeypatch, tmp_path):
    from prometheus_client import multiprocess

    dead = []
    monkeypatch.setattr(multiprocess, "mark_process_dead", dead.append)
    worker = types.SimpleNamespace(pid=4242)
    load()["child_exit"](server=None, worker=worker)
    assert dead == []
    load(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))["child_exit"](server=None, worker=worker)
    assert dead == [4242]


def test_on_starting_empties_the_prometheus_directory(load, tmp_path):
    directory = tmp_path / "prometheus"
    conf = load(PROMETHEUS_MULTIPROC_DIR=str(directory))
    conf["on_starting"](server=None)
    assert directory.is_dir()
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "notes.txt").write_text("not ours")
    conf["on_starting"](server=None)
    assert sorted(p.name for p in directory.iterdir()) == ["notes.txt"]


# --- a real gunicorn -----------------------------------------------------------------------

SMOKE_APP = """
def app(environ, start_response):
    body = b'{"status": "ok"}'
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


def _wait_for_port(port: int, process: subprocess.Popen, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("gunicorn exited before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"gunicorn did not listen on {port} within {deadline_s}s")


def test_gunicorn_starts_with_this_config_and_logs_without_secrets(tmp_path, free_port, dockerfile):
    (tmp_path / "smoke_app.py").write_text(SMOKE_APP)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ENV_NAMES},
        "REGISTRY_BIND": f"127.0.0.1:{port}",
        "REGISTRY_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONF), "smoke_app:app"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=err,
        )
        try:
            _wait_for_port(port, process)
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/h/q8Zt4mW2xVbN?holder=Aigerim",
                headers={"X-Request-ID": "smoke-1"},
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert json.load(answer) == {"status": "ok"}
            # The image's HEALTHCHECK command, run as Docker would run it.
            (healthcheck,) = [i for i in dockerfile if i.keyword == "HEALTHCHECK"]
            probe = subprocess.run(
                [sys.executable, *healthcheck.exec_form()[1:]],
                env={**env, "REGISTRY_BIND": f"0.0.0.0:{port}"},
                capture_output=True,
                check=False,
                timeout=30,
            )
            assert probe.returncode == 0, probe.stderr
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert process.returncode == 0
    lines = [json.loads(line) for line in stdout.read_text().splitlines()]
    first = lines[0]
    assert (first["path"], first["request_id"], first["status"]) == ("/h/<secret>", "smoke-1", 200)
    assert [line["path"] for line in lines] == ["/h/<secret>", "/healthz"]
    assert "q8Zt4mW2xVbN" not in stdout.read_text() + stderr.read_text()
    assert "registry: 1 gthread worker(s), 2 thread(s) each" in stderr.read_text()
    assert "Traceback" not in stderr.read_text()
    assert Path(env["PROMETHEUS_MULTIPROC_DIR"]).is_dir()
