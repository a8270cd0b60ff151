"""schemathesis against our own OpenAPI document: no operation answers 5xx or off-schema.

Every default check runs except ``positive_data_acceptance``: a request can be valid for the
schema and still break a business rule the schema cannot express (a clinic id that does not
start with its country, a period that ends before it starts); those answer 400/409/422 by design.
"""

from __future__ import annotations

import pytest
import schemathesis
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


@pytest.mark.parametrize("role", list(ROLES))
def test_no_operation_fails_on_generated_input(world: World, role: str) -> None:
    world.clinic("TJ-DUS-0007")
    kwargs = ROLES[role]
    headers = {} if kwargs is None else world.bearer(role, **kwargs)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", world.app)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=10,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:
            case.call_and_validate(
                headers=headers, excluded_checks=[schemathesis.checks.positive_data_acceptance]
            )

        try:
            run()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # every operation's failures, reported together
            failures.append(f"{operation.label}: {str(exc)[:900]}")
    assert not failures, "\n\n".join(failures)
