"""A submission lands whole or not at all: a failure after any step leaves nothing behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from registry.audit import service as audit
from registry.certificates import service as certificates
from registry.examinations import persons, service
from tests.bundles import body, examination_bundle
from tests.examinations.test_submission import _counts
from tests.support import World

# a failure must roll back the real transaction, so these tests commit for real
pytestmark = [pytest.mark.postgres, pytest.mark.committed]


def _fail_after(original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise RuntimeError("injected failure")

    return wrapper


STEPS = {
    "person matched": (persons, "match_or_create"),
    "version stored": (service, "_new_version"),
    "audit event written": (audit, "record"),
    "certificates issued": (certificates, "issue_for_version"),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_failure_after_each_step_leaves_no_trace(
    world: World, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    world.clinic("TJ-DUS-0007")
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    before = _counts(world)
    module, name = STEPS[step]
    monkeypatch.setattr(module, name, _fail_after(getattr(module, name)))
    response = world.http.post(
        "/api/v1/examinations",
        data=body(examination_bundle()),
        headers=headers,
        content_type="application/fhir+json",
    )
    assert response.status_code == 500
    assert response.json["error"] == "internal_error"
    assert "injected" not in response.get_data(as_text=True)
    assert _counts(world) == before
    monkeypatch.undo()
    retry = world.http.post(
        "/api/v1/examinations",
        data=body(examination_bundle()),
        headers=headers,
        content_type="application/fhir+json",
    )
    assert retry.status_code == 201
