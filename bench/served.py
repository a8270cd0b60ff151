"""Load from outside: gunicorn servers under the deployment's configuration, driven by ``wrk``.

Every server a benchmark compares (the registry, the minimal peer verifier) runs under
``deploy/gunicorn.conf.py`` with the same environment knobs, on a free loopback port, and
``wrk`` (Debian package ``wrk``) drives one endpoint at a time with a Lua script that sets the
method, body and headers and prints its summary as one JSON line.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "1"))


@dataclass(frozen=True)
class Endpoint:
    """One request wrk repeats: on which server, and how."""

    server: str
    method: str
    path: str
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Result:
    """wrk's summary of one endpoint in one round."""

    requests: int
    seconds: float
    errors: int  # connect, read, write, timeout, and answers >= 400
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    return path


_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _lua(endpoint: Endpoint) -> str:
    lines = [f'wrk.method = "{endpoint.method}"']
    if endpoint.body is not None:
        if "]==]" in endpoint.body:
            raise ValueError("the body cannot be quoted for Lua")
        lines.append(f"wrk.body = [==[{endpoint.body}]==]")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    for name, value in endpoint.headers:
        lines.append(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}")
    return "\n".join(lines) + _REPORT


def wrk(port: int, endpoint: Endpoint, *, seconds: float, folder: Path) -> Result:
    """One wrk run of ``seconds`` against ``endpoint`` on the server at ``port``."""
    script = folder / "request.lua"
    script.write_text(_lua(endpoint))
    output = subprocess.run(
        [
            wrk_path(),
            f"-t{WRK_THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{endpoint.path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in output.splitlines() if x.startswith("BENCH "))
    summary = json.loads(line.removeprefix("BENCH "))
    return Result(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        errors=summary["errors"],
        p50_ms=round(summary["p50_us"] / 1000, 2),
        p99_ms=round(summary["p99_us"] / 1000, 2),
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def request(
    port: int, endpoint: Endpoint, *, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """One request as wrk would send it: status, headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = dict(endpoint.headers)
        if endpoint.body is not None:
            headers["Content-Type"] = "application/json"
        connection.request(
            endpoint.method,
            endpoint.path,
            body=endpoint.body.encode() if endpoint.body is not None else None,
            headers=headers,
        )
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """``BENCH_DATABASE_URL``, else a throwaway database on the loopback PostgreSQL server."""
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        yield given
        return
    from tests.support import throwaway_postgres

    with throwaway_postgres(POSTGRES, f"{name}_{os.getpid()}") as url:
        yield url


@contextmanager
def gunicorn(
    app: str,
    environment: Mapping[str, str],
    *,
    log: Path,
    ready: Endpoint,
    access_log: bool = False,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``gunicorn -c deploy/gunicorn.conf.py APP`` on a free port, answering ``ready`` with 200.

    Its error log goes to ``log`` (a file: a pipe could fill and stall the server), and the
    access log too when asked; otherwise the access log is dropped (written alike by every
    server a benchmark compares).
    """
    port = free_port()
    with ExitStack() as stack:
        output = stack.enter_context(log.open("wb"))
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", app],
            env={**environment, "REGISTRY_BIND": f"127.0.0.1:{port}"},
            cwd=ROOT,
            stdout=output if access_log else subprocess.DEVNULL,
            stderr=output,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}")
                try:
                    if request(port, ready, timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{app} did not answer {ready.path} within 60 s")
                time.sleep(0.2)
            yield port, server
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def worker_rss_mib(server: subprocess.Popen[bytes]) -> list[float]:
    """Resident memory of each gunicorn worker (Linux /proc)."""
    sizes = []
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    try:
        pids = children.read_text().split()
    except OSError:
        return []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(round(int(line.split()[1]) / 1024, 1))
    return sizes


def server_cpu_seconds(server: subprocess.Popen[bytes]) -> float:
    """CPU time used so far by a gunicorn master and its live workers (Linux /proc)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    try:
        pids = [str(server.pid), *children.read_text().split()]
    except OSError:
        return 0.0
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time used so far by every PostgreSQL server process on this machine (Linux /proc).

    Other databases on the same server count too, so a figure from it is an upper bound.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name not in ("postgres", "postmaster") and not name.startswith("postgres"):
            continue
        fields = text[text.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks
