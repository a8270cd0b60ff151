"""deploy/nginx.conf: limits, headers and masked logs, read as text and, with nginx, run for real.

The tests that run nginx need the binary (Debian package ``nginx-light`` or ``nginx``) and skip
without it.
"""

from __future__ import annotations

import datetime
import gzip
import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .conftest import DEPLOY

CONF = DEPLOY / "nginx.conf"
HOST = "registry.example.org"
needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx not installed (Debian package nginx-light)"
)


# --- a small reader for nginx's configuration syntax ---------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def find(self, name: str, *args: str) -> list[Directive]:
        """Directives named `name` (with these leading arguments) anywhere below this one."""
        found = []
        for child in self.block or []:
            if child.name == name and child.args[: len(args)] == list(args):
                found.append(child)
            found.extend(child.find(name, *args))
        return found

    def children(self, name: str) -> list[Directive]:
        return [child for child in self.block or [] if child.name == name]


_TOKEN = re.compile(r"""'[^']*'|"(?:\\.|[^"\\])*"|[{};]|[^\s{};'"]+""")


def parse(text: str) -> Directive:
    """The configuration as a tree; quoted arguments keep their content without the quotes."""
    text = "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())
    root = Directive("main", [], [])
    stack = [root]
    words: list[str] = []
    for token in _TOKEN.findall(text):
        if token == ";":
            stack[-1].block.append(Directive(words[0], words[1:]))
            words = []
        elif token == "{":
            block = Directive(words[0], words[1:], [])
            stack[-1].block.append(block)
            stack.append(block)
            words = []
        elif token == "}":
            stack.pop()
        else:
            words.append(token[1:-1] if token[0] in "'\"" else token)
    assert len(stack) == 1 and not words, "unbalanced configuration"
    return root


@pytest.fixture(scope="module")
def conf() -> Directive:
    return parse(CONF.read_text())


def _registry_servers(conf: Directive) -> list[Directive]:
    """The server blocks for the registry's host name (not the upstream's `server` lines)."""
    return [
        s
        for s in conf.find("server")
        if s.block is not None and s.children("server_name")[0].args == [HOST]
    ]


def _https_server(conf: Directive) -> Directive:
    (server,) = [s for s in _registry_servers(conf) if "ssl" in s.children("listen")[0].args]
    return server


def _header(server: Directive, name: str) -> str:
    (header,) = [h for h in server.children("add_header") if h.args[0] == name]
    return header.args[1]


def test_request_bodies_are_capped_at_2_mib_like_the_app(conf):
    (http,) = conf.children("http")
    assert [d.args for d in http.children("client_max_body_size")] == [["2m"]]


def test_verify_and_token_endpoints_are_rate_limited(conf):
    zones = {d.args[1].split("=")[1].split(":")[0] for d in conf.find("limit_req_zone")}
    server = _https_server(conf)
    (verify,) = server.find("location", "=", "/api/v1/verify")
    (token,) = server.find("location", "=", "/oauth/token")
    for location, zone in ((verify, "registry_verify"), (token, "registry_token")):
        (limit,) = location.children("limit_req")
        assert limit.args[0] == f"zone={zone}"
        assert zone in zones
    assert conf.find("limit_req_status")[0].args == ["429"]


def test_http_only_redirects_to_https(conf):
    servers = _registry_servers(conf)
    (redirecting,) = [s for s in servers if "ssl" not in s.children("listen")[0].args]
    (location,) = redirecting.find("location", "/")
    assert location.children("return")[0].args == ["301", f"https://{HOST}$request_uri"]


def test_security_headers_are_sent_on_every_answer(conf):
    server = _https_server(conf)
    assert _header(server, "Strict-Transport-Security").startswith("max-age=63072000")
    assert _header(server, "X-Content-Type-Options") == "nosniff"
    assert _header(server, "Referrer-Policy") == "no-referrer"
    assert "camera=(self)" in _header(server, "Permissions-Policy")
    assert all(h.args[-1] == "always" for h in server.children("add_header"))


def test_no_location_drops_the_servers_proxy_headers_or_security_headers(conf):
    # In nginx, one proxy_set_header/add_header in a location discards all inherited ones.
    for location in _https_server(conf).find("location"):
        assert not location.children("proxy_set_header"), location.args
        assert not location.children("add_header"), location.args


def test_proxy_passes_forwarding_headers_and_the_request_id(conf):
    server = _https_server(conf)
    headers = {d.args[0]: d.args[1] for d in server.children("proxy_set_header")}
    assert headers["X-Forwarded-Proto"] == "$scheme"
    assert headers["X-Forwarded-For"] == "$remote_addr"
    assert headers["X-Forwarded-Host"] == "$host"
    assert headers["X-Request-ID"] == "$registry_request_id"
    assert headers["Connection"] == ""
    assert server.children("proxy_http_version")[0].args == ["1.1"]
    (upstream,) = conf.find("upstream", "registry_app")
    assert upstream.children("keepalive")


def test_access_log_format_leaves_out_query_strings_and_personal_data(conf):
    (log_format,) = conf.find("log_format", "registry_json")
    template = "".join(log_format.args[2:])
    assert log_format.args[1] == "escape=json"
    json.loads(re.sub(r"\$\w+", "0", template))  # the template is a JSON object
    for variable in (
        "$request",
        "$request_uri",
        "$args",
        "$query_string",
        "$remote_addr",
        "$http_referer",
        "$http_user_agent",
        "$uri",
    ):
        assert not re.search(re.escape(variable) + r"\b", template), variable
    assert "$registry_log_path" in template
    assert [d.args[1] for d in conf.find("access_log")] == ["registry_json"]


def test_holder_secret_map_masks_h_paths(conf):
    (masking,) = conf.find("map", "$uri", "$registry_log_path")
    rules = {d.name: d.args[0] for d in masking.block}
    assert rules["~^/h/[^/]*(?<rest>.*)$"] == "/h/<secret>$rest"
    assert rules["default"] == "$uri"


def test_json_answers_are_compressed(conf):
    (http,) = conf.children("http")
    assert http.children("gzip")[0].args == ["on"]
    assert "application/json" in http.children("gzip_types")[0].args


def test_metrics_are_not_served_to_the_internet(conf):
    (metrics,) = _https_server(conf).find("location", "=", "/metrics")
    assert metrics.children("return")[0].args == ["404"]


# --- nginx itself --------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "registry.crt", directory / "registry.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} no longer in nginx.conf"
    return text.replace(old, new)


def _local_copy(directory: Path, *, upstream: str, ports: tuple[int, int] | None = None) -> Path:
    """nginx.conf with test certificates, logs and temp files under `directory`."""
    text = CONF.read_text()
    cert, key = _self_signed(directory)
    text = _replace(text, "/etc/nginx/tls/registry.crt", str(cert))
    text = _replace(text, "/etc/nginx/tls/registry.key", str(key))
    text = _replace(text, "server app:8000;", f"server {upstream};")
    text = _replace(text, "/var/log/nginx/", f"{directory}/")
    temp = directory / "temp"
    temp.mkdir()
    temp_paths = "".join(
        f"    {kind}_temp_path {temp}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = _replace(text, "http {\n", "http {\n" + temp_paths)
    if ports is not None:
        http_port, https_port = ports
        text = re.sub(r"^\s*listen \[::\]:\d+.*$", "", text, flags=re.M)  # IPv6 may be absent
        text = re.sub(r"listen 80\b", f"listen 127.0.0.1:{http_port}", text)
        text = re.sub(r"listen 443\b", f"listen 127.0.0.1:{https_port}", text)
    path = directory / "nginx.conf"
    path.write_text(text)
    return path


def _nginx(path: Path, *extra: str) -> list[str]:
    directory = path.parent
    return [
        "nginx",
        "-c",
        str(path),
        "-p",
        str(directory),
        "-e",
        str(directory / "startup-error.log"),
        "-g",
        f"pid {directory}/nginx.pid;{''.join(extra)}",
    ]


@needs_nginx
def test_nginx_accepts_the_configuration(tmp_path):
    path = _local_copy(tmp_path, upstream="127.0.0.1:8000")
    result = subprocess.run([*_nginx(path), "-t"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# --- nginx running in front of a stand-in application --------------------------------------


@dataclass
class Backend:
    port: int
    seen: list[dict[str, str]] = field(default_factory=list)


def _stand_in(seen: list[dict[str, str]]) -> type[BaseHTTPRequestHandler]:
    body = json.dumps({"items": ["certificate"] * 200}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def backend() -> Iterator[Backend]:
    seen: list[dict[str, str]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _stand_in(seen))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Backend(server.server_address[1], seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Edge:
    http_port: int
    https_port: int
    directory: Path


@pytest.fixture
def edge(tmp_path, backend, free_port) -> Iterator[Edge]:
    http_port, https_port = free_port(), free_port()
    path = _local_copy(
        tmp_path, upstream=f"127.0.0.1:{backend.port}", ports=(http_port, https_port)
    )
    process = subprocess.Popen(
        _nginx(path, " daemon off;"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.stderr.read().decode()
            try:
                with socket.create_connection(("127.0.0.1", https_port), timeout=0.5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.05)
        yield Edge(http_port, https_port, tmp_path)
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stderr.close()


class _TLSConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with the registry's name in SNI and Host."""

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _https(edge: Edge) -> http.client.HTTPSConnection:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return _TLSConnection(HOST, edge.https_port, timeout=10, context=context)


def _fetch(connection, method, path, headers=None, body=None):
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response, response.read()


@needs_nginx
def test_edge_redirects_http_and_drops_unknown_hosts(edge):
    plain = http.client.HTTPConnection("127.0.0.1", edge.http_port, timeout=10)
    try:
        response, _ = _fetch(plain, "GET", "/h/q8Zt4mW2xVbN?x=1", {"Host": HOST})
        assert response.status == 301
        assert response.getheader("Location") == f"https://{HOST}/h/q8Zt4mW2xVbN?x=1"
    finally:
        plain.close()
    stranger = http.client.HTTPConnection("127.0.0.1", edge.http_port, timeout=10)
    try:
        with pytest.raises(http.client.RemoteDisconnected):
            _fetch(stranger, "GET", "/", {"Host": "elsewhere.example"})
    finally:
        stranger.close()


@needs_nginx
def test_edge_forwards_to_the_app_with_headers_and_without_client_spoofing(edge, backend):
    connection = _https(edge)
    try:
        response, _ = _fetch(
            connection,
            "GET",
            "/h/q8Zt4mW2xVbN?holder=Aigerim",
            {
                "X-Request-ID": "trace-42",
                "X-Forwarded-For": "198.51.100.9",
                "X-Forwarded-Ssl": "off",
            },
        )
        assert response.status == 200
        assert response.getheader("Strict-Transport-Security").startswith("max-age=")
        assert response.getheader("Referrer-Policy") == "no-referrer"
        assert response.getheader("X-Content-Type-Options") == "nosniff"
        assert response.getheader("X-Request-ID") == "trace-42"
        response, _ = _fetch(connection, "GET", "/api/v1/verify", {"X-Request-ID": 'no "good"'})
        assert re.fullmatch(r"[0-9a-f]{32}", response.getheader("X-Request-ID"))
    finally:
        connection.close()
    holder, _ = backend.seen
    assert holder["path"] == "/h/q8Zt4mW2xVbN?holder=Aigerim"  # the app still gets it all
    assert holder["host"] == HOST
    assert holder["x-forwarded-proto"] == "https"
    assert holder["x-forwarded-for"] == "127.0.0.1"
    assert holder["x-request-id"] == "trace-42"
    assert "x-forwarded-ssl" not in holder


@needs_nginx
def test_edge_refuses_big_bodies_metrics_and_bursts_in_json(edge, backend):
    connection = _https(edge)
    try:
        connection.putrequest("POST", "/api/v1/examinations")
        connection.putheader("Content-Type", "application/fhir+json")
        connection.putheader("Content-Length", str(3 * 1024 * 1024))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"] == "payload_too_large"
    finally:
        connection.close()
    connection = _https(edge)
    try:
        response, _ = _fetch(connection, "GET", "/metrics")
        assert response.status == 404
        statuses, refusal = [], b""
        for _ in range(60):
            response, body = _fetch(connection, "POST", "/api/v1/verify", body=b"{}")
            statuses.append(response.status)
            if response.status == 429:
                refusal = body
    finally:
        connection.close()
    # 1 + burst 20 always pass; 60 requests in well under 4 s must meet the 10 r/s limit.
    assert statuses[:21] == [200] * 21
    assert 429 in statuses
    assert json.loads(refusal)["error"] == "too_many_requests"
    assert all(seen["path"] != "/metrics" for seen in backend.seen)


@needs_nginx
def test_edge_compresses_json_but_not_holder_pages(edge):
    connection = _https(edge)
    try:
        response, body = _fetch(connection, "GET", "/api/v1/rulesets", {"Accept-Encoding": "gzip"})
        assert response.getheader("Content-Encoding") == "gzip"
        assert json.loads(gzip.decompress(body))["items"]
        response, _ = _fetch(connection, "GET", "/h/q8Zt4mW2xVbN", {"Accept-Encoding": "gzip"})
        assert response.getheader("Content-Encoding") is None
    finally:
        connection.close()


@needs_nginx
def test_edge_access_log_has_no_secrets_queries_or_addresses(edge):
    connection = _https(edge)
    try:
        for path in ("/h/q8Zt4mW2xVbN?holder=Aigerim", "/api/v1/certificates/CERT7Hq9ZK2m/qr.svg"):
            response, _ = _fetch(connection, "GET", path, {"User-Agent": "PhoneBrowser/1.0"})
            assert response.status == 200
    finally:
        connection.close()
    # nginx writes the line in its log phase, just after the answer went out.
    log, deadline = edge.directory / "access.log", time.monotonic() + 10
    while len(log.read_text().splitlines()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["path"] for line in lines] == ["/h/<secret>", "/api/v1/certificates/<id>/qr.svg"]
    assert {line["client_net"] for line in lines} == {"127.0.0.0"}
    for secret in ("q8Zt4mW2xVbN", "Aigerim", "CERT7Hq9ZK2m", "PhoneBrowser", "127.0.0.1"):
        assert secret not in text
