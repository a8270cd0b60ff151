"""Rate-limit state in Redis: every worker and every replica counts against one allowance.

Runs against the Redis at ``REGISTRY_TEST_REDIS_URL`` (default 127.0.0.1:6379, which CI always
has); skipped with the reason when it is unreachable, except in CI, where that fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

from registry import create_app
from tests.support import BASE_URL

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
BODY = {"qr": "shc:/12"}  # answered "malformed": the allowance counts every request


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = os.environ.get("REGISTRY_TEST_REDIS_URL", DEFAULT_REDIS)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Redis rate-limit tests: Redis at {url}: {exc}")
        pytest.skip(f"Redis not reachable at {url}: {exc}")
    return url


@pytest.fixture
def address(redis_url: str) -> Iterator[str]:
    """A client address of this test alone (IPv6 documentation prefix); its keys removed after."""
    here = f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    yield here
    store = redis.Redis.from_url(redis_url)
    for key in store.scan_iter(match=f"*{here}*"):
        store.delete(key)


def _app(redis_url: str, sqlite_url: str, keys_dir: Path) -> Flask:
    # a fresh app is what another gunicorn worker or replica has: its own process memory
    return create_app(
        {
            "database_url": sqlite_url,
            "keys_dir": keys_dir,
            "base_url": BASE_URL,
            "ratelimit_storage": redis_url,
            "verify_rate_limit": "3 per minute",
        },
        create_keys=True,
    )


def _post(app: Flask, address: str) -> int:
    response = app.test_client().post(
        "/api/v1/verify", json=BODY, environ_base={"REMOTE_ADDR": address}
    )
    return response.status_code


def test_the_allowance_is_counted_in_redis_and_shared_by_a_fresh_worker(
    redis_url: str, sqlite_url: str, keys_dir: Path, address: str
) -> None:
    first = _app(redis_url, sqlite_url, keys_dir)
    assert [_post(first, address) for _ in range(3)] == [200, 200, 200]
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = list(store.scan_iter(match=f"*{address}*"))
    assert len(keys) == 1 and "verify" in keys[0]
    assert int(store.get(keys[0]) or 0) == 3
    assert 0 < store.ttl(keys[0]) <= 60
    # a worker that has never seen this address refuses the fourth request
    second = _app(redis_url, sqlite_url, keys_dir)
    refused = second.test_client().post(
        "/api/v1/verify", json=BODY, environ_base={"REMOTE_ADDR": address}
    )
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.json["error"] == "too_many_requests"
    for app in (first, second):
        app.extensions["registry"].db.engine.dispose()


def test_another_address_has_its_own_allowance_in_redis(
    redis_url: str, sqlite_url: str, keys_dir: Path, address: str
) -> None:
    app = _app(redis_url, sqlite_url, keys_dir)
    assert [_post(app, address) for _ in range(4)] == [200, 200, 200, 429]
    neighbour = f"2001:db8::{uuid.uuid4().hex[:4]}"
    try:
        assert _post(app, neighbour) == 200
    finally:
        store = redis.Redis.from_url(redis_url)
        for key in store.scan_iter(match=f"*{neighbour}*"):
            store.delete(key)
        app.extensions["registry"].db.engine.dispose()
