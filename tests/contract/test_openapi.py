"""schemathesis against our own OpenAPI document: no operation answers 5xx or off-schema.

Every documented operation runs for every role (a valid token of each, and none), and the
test fails if an operation of the document was not exercised or a role's token was refused.

Every default check runs except ``positive_data_acceptance``: a request can be valid for the
schema and still break a business rule the schema cannot express (a clinic id that does not
start with its country, a period that ends before it starts); those answer 400/409/422 by design.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings

from tests.support import World

ROLES = {
    "anonymous": None,
    "clinic": {"clinic_id": "TJ-DUS-0007"},
    "employer": {},
    "authority": {"country": "KZ"},
    "ministry": {"country": "TJ"},
    "accreditor": {"country": "TJ"},
    "admin": {},
}


def _documented_operations(document: dict[str, Any]) -> set[str]:
    """Every operation of the API document, as ``METHOD /path``."""
    return {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }


@functools.cache
def _schema(app: Flask) -> Any:
    """The API document as schemathesis reads it, once an app: it is the same for every role."""
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


@pytest.mark.parametrize("role", list(ROLES))
def test_no_operation_fails_on_generated_input(world: World, role: str) -> None:
    world.clinic("TJ-DUS-0007")
    kwargs = ROLES[role]
    headers = {} if kwargs is None else world.bearer(role, **kwargs)
    schema = _schema(world.app)
    document = world.http.get("/openapi.json").json
    documented = _documented_operations(document)
    failures = []
    exercised: set[str] = set()
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        exercised.add(f"{operation.method.upper()} {operation.path}")

        @settings(
            max_examples=10,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:
            response = case.call_and_validate(
                headers=headers, excluded_checks=[schemathesis.checks.positive_data_acceptance]
            )
            statuses.append(response.status_code)

        try:
            run()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # every operation's failures, reported together
            failures.append(f"{operation.label}: {str(exc)[:900]}")
    assert not failures, "\n\n".join(failures)
    assert exercised == documented and len(documented) > 20, documented ^ exercised
    assert len(statuses) >= len(documented)
    if headers:
        # the role's token was accepted throughout: a token-only endpoint does not answer 401
        probe = world.http.get("/api/v1/examinations/EX-none", headers=headers)
        assert probe.status_code in (403, 404), (role, probe.json)


# the API document itself, its viewer and static files: not operations of the registry
NOT_OPERATIONS = {
    "GET /openapi.json",
    "GET /docs",
    "GET /static/{filename}",
    "GET /clinic/static/{filename}",
}
_CONVERTER = r"<(?:[^:>]+:)?([^>]+)>"  # werkzeug's <converter:name>
_PARAMETER = r"{\1}"


def test_every_route_of_the_app_is_a_documented_operation(world: World) -> None:
    import re

    served = {
        f"{method} {re.sub(_CONVERTER, _PARAMETER, rule.rule)}"
        for rule in world.app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    document = world.http.get("/openapi.json").json
    documented = _documented_operations(document)
    assert served - NOT_OPERATIONS == documented
    # pages say they answer HTML, FHIR routes FHIR JSON
    for path in ("/verify", "/h/{secret}", "/surveillance"):
        assert "text/html" in document["paths"][path]["get"]["responses"]["200"]["content"]
    assert "text/html" in document["paths"]["/verify"]["post"]["responses"]["200"]["content"]
    for path in ("/fhir/metadata", "/fhir/{resource_type}", "/fhir/Bundle/{examination_id}"):
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        assert "application/fhir+json" in content
