"""POST /api/v1/verify before the Flask stack: the same answer, headers, metrics and errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from registry.verification import service
from registry.verification.endpoint import VerifyRoute
from tests.support import World
from tests.verification.helpers import BIRTH_DATE, certificate, publish, qr_of

ANSWER_HEADERS = {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Counted:
    """The Flask stack behind the handler, counting the verifications handed on to it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.count = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.count += environ["PATH_INFO"] == "/api/v1/verify"
        return self.inner(environ, start_response)


@pytest.fixture
def stack(world: World, monkeypatch: pytest.MonkeyPatch) -> Counted:
    route = world.app.wsgi_app
    assert isinstance(route, VerifyRoute)
    counted = Counted(route.inner)
    monkeypatch.setattr(route, "inner", counted)
    return counted


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_plain_verification_is_answered_before_the_stack_as_the_stack_answers_it(
    world: World, stack: Counted
) -> None:
    publish(world)
    issued = certificate(world, number="ENDPOINT-1")
    by_qr = {"qr": qr_of(world, issued)}
    fast = world.http.post("/api/v1/verify", json=by_qr, headers={"X-Request-ID": "abc-123"})
    assert stack.count == 0
    # a query string sends the same request through the Flask route
    slow = world.http.post("/api/v1/verify?via=stack", json=by_qr)
    assert stack.count == 1
    assert fast.status_code == slow.status_code == 200
    assert fast.json["result"] == slow.json["result"] == "valid"
    assert set(fast.json) == set(slow.json)
    assert fast.json["holder"]["name"] == slow.json["holder"]["name"] == "Karimov Rustam Saidovich"
    assert fast.data.endswith(b"}\n") and slow.data.endswith(b"}\n")
    for name, value in ANSWER_HEADERS.items():
        assert fast.headers[name] == slow.headers[name] == value
    assert set(fast.headers.keys()) == set(slow.headers.keys())
    assert fast.headers["X-Request-ID"] == "abc-123"
    assert int(fast.headers["Content-Length"]) == len(fast.data)
    by_number = {"certificate_id": issued.id, "birth_date": BIRTH_DATE}
    assert world.http.post("/api/v1/verify", json=by_number).json["result"] == "valid"
    assert stack.count == 1


def test_what_the_stack_refuses_or_authenticates_goes_on_to_it(
    world: World, stack: Counted
) -> None:
    bad_destination = world.http.post(
        "/api/v1/verify", json={"qr": "shc:/12", "for_destination": "xx1"}
    )
    assert bad_destination.status_code == 400
    assert bad_destination.json["error"] == "bad_request"
    assert stack.count == 1
    with_token = world.http.post(
        "/api/v1/verify", json={"qr": "shc:/12"}, headers=world.bearer("employer")
    )
    assert with_token.status_code == 200 and with_token.json["result"] == "malformed"
    form = world.http.post("/api/v1/verify", data={"qr": "shc:/12"})
    assert form.status_code == 200 and form.json["result"] == "malformed"
    assert stack.count == 3


def test_the_route_is_counted_in_the_request_metrics_under_its_endpoint(
    world: World, stack: Counted
) -> None:
    def answered() -> float:
        text = world.http.get("/metrics").data.decode()
        labels = {"endpoint": "verification.verify", "method": "POST", "status": "200"}
        return _sample(text, "registry_http_request_duration_seconds_count", **labels)

    before = answered()
    assert world.http.post("/api/v1/verify", json={"qr": "shc:/12"}).status_code == 200
    assert answered() == before + 1
    assert stack.count == 0


def test_a_database_outage_during_a_verification_is_the_apps_503(
    world: World, stack: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("INSERT", {}, ConnectionRefusedError("down"))

    monkeypatch.setattr(service, "verify", unavailable)
    response = world.http.post(
        "/api/v1/verify", json={"qr": "shc:/12"}, headers={"X-Request-ID": "outage-1"}
    )
    assert response.status_code == 503
    assert response.json["error"] == "database_unavailable"
    assert response.json["request_id"] == "outage-1"
    assert response.headers["Retry-After"] == "5"
    assert response.headers["X-Request-ID"] == "outage-1"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert stack.count == 0
