"""The minimal peer verifier: what any reader of a SMART Health Card QR must do, and no more.

``POST {"qr": "shc:/…"}``: the QR digits decoded to the JWS, its ES256 signature checked with
``cryptography`` against the issuer's key (``BENCH_PEER_JWKS``: a JWK set), the payload
inflated and parsed, a JSON answer. No database, no log, no receipt. The benchmarks serve it
with the registry's own gunicorn configuration: ``gunicorn -c deploy/gunicorn.conf.py
bench.peer:app``.

With ``BENCH_PEER_DATABASE_URL`` (a libpq URL) the peer also writes one row per answer to
``peer_checks`` with an auto-committed INSERT, durable before it answers: the least a verifier
that keeps any record can do. The table is the caller's to create.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _public_key(jwk: dict[str, str]) -> ec.EllipticCurvePublicKey:
    x, y = (int.from_bytes(_b64(jwk[c]), "big") for c in ("x", "y"))
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


KEYS = {
    k["kid"]: _public_key(k)
    for k in json.loads(os.environ.get("BENCH_PEER_JWKS", '{"keys": []}'))["keys"]
}
ES256 = ec.ECDSA(hashes.SHA256())


def verify(qr: str) -> dict[str, Any]:
    digits = qr.removeprefix("shc:/")
    token = "".join(chr(int(digits[i : i + 2]) + 45) for i in range(0, len(digits), 2))
    header, payload, signature = token.split(".")
    key = KEYS.get(json.loads(_b64(header)).get("kid"))
    raw = _b64(signature)
    try:
        if key is None or len(raw) != 64:
            raise InvalidSignature
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        key.verify(der, f"{header}.{payload}".encode(), ES256)
    except InvalidSignature:
        return {"result": "invalid_signature"}
    claims = json.loads(zlib.decompress(_b64(payload), -15))
    subject = claims["vc"]["credentialSubject"]
    return {
        "result": "valid",
        "iss": claims["iss"],
        "nbf": claims.get("nbf"),
        "entries": len(subject["fhirBundle"]["entry"]),
    }


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] == "GET":  # alive
        answer, status = {"status": "ok"}, "200 OK"
    else:
        answer, status = _answer(environ)
    body = json.dumps(answer).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _answer(environ: dict[str, Any]) -> tuple[dict[str, Any], str]:
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        answer, status = verify(json.loads(environ["wsgi.input"].read(size))["qr"]), "200 OK"
    except (ValueError, KeyError, TypeError):
        answer, status = {"result": "malformed"}, "400 Bad Request"
    if DATABASE:
        _record(answer)
    return answer, status


DATABASE = os.environ.get("BENCH_PEER_DATABASE_URL", "")
_connections = threading.local()  # one connection per worker thread, as a pool would give


def _record(answer: dict[str, Any]) -> None:
    import psycopg

    connection = getattr(_connections, "connection", None)
    if connection is None:
        connection = _connections.connection = psycopg.connect(DATABASE, autocommit=True)
    connection.execute(
        "INSERT INTO peer_checks (result, issuer) VALUES (%s, %s)",
        (answer["result"], answer.get("iss")),
    )
