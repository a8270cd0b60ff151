"""Gunicorn settings: ``gunicorn -c deploy/gunicorn.conf.py registry.wsgi:app``.

Every knob reads an environment variable, so one file serves systemd, compose and Kubernetes:

- ``REGISTRY_BIND``: address(es) to listen on, comma-separated (``127.0.0.1:8000``)
- ``REGISTRY_WORKERS``: worker processes (2 × usable cores + 1, at most 12)
- ``REGISTRY_WORKER_CLASS``: ``gthread`` or ``sync`` (``gthread``)
- ``REGISTRY_THREADS``: threads per ``gthread`` worker (``2``)
- ``REGISTRY_TIMEOUT``: seconds before a silent worker is killed (``30``)
- ``REGISTRY_GRACEFUL_TIMEOUT``: seconds a worker gets to finish on shutdown (``30``)
- ``REGISTRY_KEEPALIVE``: idle keep-alive seconds, above nginx's 60 s upstream timeout (``75``)
- ``REGISTRY_MAX_REQUESTS``: requests before a worker is recycled (``2000``, 10 % jitter)
- ``REGISTRY_FORWARDED_ALLOW_IPS``: proxies trusted for ``X-Forwarded-Proto``
  (``127.0.0.1,::1``; ``*`` where only the proxy can reach the port)
- ``REGISTRY_LOG_LEVEL``: gunicorn's error-log level (``info``)
- ``PROMETHEUS_MULTIPROC_DIR``: turns on multiprocess metrics when set

Worker model. The expensive requests are CPU-bound Python: ES256 signing and verification,
FHIR parsing and validation, PDF rendering. Threads do not run Python in parallel, so capacity
comes from processes; ``gthread`` with two threads per process only overlaps the short waits on
PostgreSQL and Redis between those CPU bursts, and unlike ``sync`` it keeps nginx's upstream
keep-alive connections open. ``sync`` stays available for comparison: measured with the
verification benchmark on two workers it answered about a fifth of gthread's /healthz rate and
two fifths of its verifications (BENCHMARKS.md, verification). The defaults here are a
starting point: the worker and thread counts used in production are the ones measured in
BENCHMARKS.md, set through ``REGISTRY_WORKERS`` and ``REGISTRY_THREADS``.

Access log. One JSON object per request on stdout with no personal data: no client address,
no user agent, no referrer, no query string, and the path reduced to a template, because
holder links (``/h/<secret>``) and certificate ids are bearer secrets. See ``path_template``.
"""

from __future__ import annotations

import json
import math
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from gunicorn import glogging

MAX_DEFAULT_WORKERS = 12
WORKER_CLASSES = ("gthread", "sync")


def _env_int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def available_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: the affinity mask, narrowed by a cgroup v2 CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        quota, period = cpu_max.read_text().split()
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    # A container limited to 1.5 CPUs on a 64-core host must not start 129 workers.
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def default_workers(cores: int) -> int:
    """Gunicorn's usual 2 × cores + 1, capped: each worker holds its own memory and DB pool."""
    return min(2 * cores + 1, MAX_DEFAULT_WORKERS)


# Path templates for the access log. Order matters: the first match wins.
_PATH_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^/h/[^/]*"), "/h/<secret>"),
    (re.compile(r"^/api/v1/certificates/[^/]+"), "/api/v1/certificates/<id>"),
    (re.compile(r"^/api/v1/authority/examinations/[^/]+"), "/api/v1/authority/examinations/<id>"),
    (re.compile(r"^/api/v1/examinations/[^/]+"), "/api/v1/examinations/<id>"),
    (re.compile(r"^/api/v1/clinics/[^/]+"), "/api/v1/clinics/<id>"),
    (re.compile(r"^/api/v1/rulesets/[^/]+"), "/api/v1/rulesets/<id>"),
    (re.compile(r"^/fhir/(?P<type>[A-Za-z]+)/[^/]+"), r"/fhir/\g<type>/<id>"),
)
# Any other segment that looks like an identifier: a long token, or a shorter one with digits.
_ID_SEGMENT = re.compile(r"^(?:[A-Za-z0-9_-]{20,}|(?=[^/]*\d)[A-Za-z0-9_-]{8,})$")
_MAX_LOGGED_PATH = 200
_REQUEST_TARGET = re.compile(r"^(?:/|https?://)")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def path_template(target: str) -> str:
    """The loggable form of a request path: no query string, secrets and ids replaced."""
    if "://" in target:
        target = urlsplit(target).path
    path = target.split("?", 1)[0].split("#", 1)[0]
    for pattern, template in _PATH_RULES:
        path, count = pattern.subn(template, path, count=1)
        if count:
            break
    segments = ["<id>" if _ID_SEGMENT.match(s) else s for s in path.split("/")]
    return "/".join(segments)[:_MAX_LOGGED_PATH]


def _json_escape(value: str) -> str:
    return json.dumps(value, ensure_ascii=True)[1:-1]


class JSONAtoms(dict):
    """Access-log atoms escaped for use inside a JSON string; unknown atoms read as ``-``."""

    def __init__(self, atoms: dict[str, object]) -> None:
        super().__init__(
            {k: _json_escape(v) if isinstance(v, str) else v for k, v in atoms.items()}
        )

    def __getitem__(self, key: str) -> object:
        return super().get(key.lower() if key.startswith("{") else key, "-")


class RegistryLogger(glogging.Logger):
    """Gunicorn's logger, reduced to atoms that carry no personal data or URL secrets."""

    atoms_wrapper_class = JSONAtoms

    def atoms(self, resp, req, environ, request_time) -> dict[str, object]:
        status = str(resp.status or "0").split(None, 1)[0]
        request_id = environ.get("HTTP_X_REQUEST_ID", "")
        return {
            "t": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "m": environ.get("REQUEST_METHOD", "-"),
            "U": path_template(environ.get("PATH_INFO") or "/"),
            "H": environ.get("SERVER_PROTOCOL", "-"),
            "s": int(status) if status.isdigit() else 0,
            "B": getattr(resp, "sent", None) or 0,
            "L": f"{request_time.total_seconds():.6f}",
            "p": os.getpid(),
            "{x-request-id}i": request_id if _REQUEST_ID.match(request_id) else "-",
        }

    # Gunicorn names the request URI, query string included, when it logs a failed request.
    def error(self, msg, *args, **kwargs) -> None:
        super().error(msg, *_masked(args), **kwargs)

    def warning(self, msg, *args, **kwargs) -> None:
        super().warning(msg, *_masked(args), **kwargs)

    def debug(self, msg, *args, **kwargs) -> None:
        super().debug(msg, *_masked(args), **kwargs)

    def exception(self, msg, *args, **kwargs) -> None:
        super().exception(msg, *_masked(args), **kwargs)


def _masked(args: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(
        path_template(a) if isinstance(a, str) and _REQUEST_TARGET.match(a) else a for a in args
    )


# --- server socket -------------------------------------------------------------------------

bind = [
    address.strip()
    for address in os.environ.get("REGISTRY_BIND", "127.0.0.1:8000").split(",")
    if address.strip()
]
backlog = 2048

# --- workers -------------------------------------------------------------------------------

worker_class = os.environ.get("REGISTRY_WORKER_CLASS", "gthread").strip() or "gthread"
if worker_class not in WORKER_CLASSES:
    raise ValueError(f"REGISTRY_WORKER_CLASS must be one of {WORKER_CLASSES}, got {worker_class!r}")
workers = _env_int("REGISTRY_WORKERS", default_workers(available_cores()))
# Gunicorn silently turns "sync" into "gthread" when threads > 1, so sync means one thread.
threads = _env_int("REGISTRY_THREADS", 2) if worker_class == "gthread" else 1
keepalive = _env_int("REGISTRY_KEEPALIVE", 75)

# Import the app once in the master, then fork: faster start, shared read-only pages.
# Whatever the master opened (database connections above all) must not be shared; see post_fork.
preload_app = True

# Recycle workers now and then so slow leaks (C libraries under WeasyPrint) cannot accumulate;
# the jitter keeps them from all restarting at once.
max_requests = _env_int("REGISTRY_MAX_REQUESTS", 2000)
max_requests_jitter = max(1, max_requests // 10)

timeout = _env_int("REGISTRY_TIMEOUT", 30)
graceful_timeout = _env_int("REGISTRY_GRACEFUL_TIMEOUT", 30)

# The heartbeat file lives in memory: /dev/shm is writable under a read-only root filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# --- request limits (nginx enforces the body size: client_max_body_size 2m) ------------------

limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190

# --- proxying ------------------------------------------------------------------------------

forwarded_allow_ips = os.environ.get("REGISTRY_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Only the header nginx sets; several scheme headers that disagree would fail the request.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# --- logging -------------------------------------------------------------------------------

proc_name = "registry"
loglevel = os.environ.get("REGISTRY_LOG_LEVEL", "info")
errorlog = "-"
accesslog = "-"
logger_class = RegistryLogger
access_log_format = (
    '{"time":"%(t)s","request_id":"%({x-request-id}i)s","method":"%(m)s","path":"%(U)s",'
    '"protocol":"%(H)s","status":%(s)s,"bytes":%(B)s,"duration_s":%(L)s,"pid":%(p)s}'
)

# Operators use signals (HUP, TERM, TTIN/TTOU); the control socket would want a writable $HOME.
control_socket_disable = True


# --- hooks ---------------------------------------------------------------------------------


def on_starting(server) -> None:
    """Start with an empty Prometheus directory: files of an earlier run would be summed in."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def when_ready(server) -> None:
    """Log the effective worker model, which benchmarks need to report."""
    cfg = server.cfg
    server.log.info(
        "registry: %d %s worker(s), %d thread(s) each, timeout %ds",
        cfg.workers,
        cfg.worker_class_str,
        cfg.threads,
        cfg.timeout,
    )


def post_fork(server, worker) -> None:
    """Drop the database connections inherited from the master; the worker opens its own."""
    try:
        from registry.db import dispose_engine
    except ModuleNotFoundError as exc:
        if exc.name in ("registry", "registry.db"):
            return
        raise
    dispose_engine()


def child_exit(server, worker) -> None:
    """Remove a dead worker's live gauges from the Prometheus multiprocess directory."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
