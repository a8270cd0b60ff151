"""Metrics and logs: what operators see, and that it never carries personal data."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from registry.logs import get_logger
from tests.bundles import body, examination_bundle
from tests.support import World


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{{{wanted}}}")


def test_metrics_count_requests_by_endpoint_and_submissions_by_outcome(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    before = world.http.get("/metrics").data.decode()
    try:
        accepted_before = _sample(before, "registry_submissions_total", outcome="accepted")
    except AssertionError:
        accepted_before = 0.0
    response = world.http.post(
        "/api/v1/examinations",
        data=body(examination_bundle()),
        headers=headers,
        content_type="application/fhir+json",
    )
    assert response.status_code == 201
    after = world.http.get("/metrics").data.decode()
    assert _sample(after, "registry_submissions_total", outcome="accepted") == accepted_before + 1
    assert (
        _sample(
            after,
            "registry_http_request_duration_seconds_count",
            endpoint="examinations.submit",
            status="201",
        )
        >= 1
    )


@pytest.mark.committed
def test_metrics_count_verifications_by_result_and_report_the_database_pool(
    world: World,
) -> None:
    def malformed() -> float:
        text = world.http.get("/metrics").data.decode()
        try:
            return _sample(text, "registry_verifications_total", result="malformed")
        except AssertionError:
            return 0.0

    before = malformed()
    for _ in range(2):
        answer = world.http.post("/api/v1/verify", json={"qr": "shc:/12"}).json
        assert answer["result"] == "malformed"
    assert malformed() == before + 2
    text = world.http.get("/metrics").data.decode()
    # after the last request every connection was back in the pool
    assert _sample(text, "registry_db_pool_connections", state="checked_out") == 0
    assert _sample(text, "registry_db_pool_connections", state="idle") >= 1


def test_log_lines_are_json_with_the_request_id_and_redact_personal_keys(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from registry.logs import bind_request

    bind_request("req-123")
    get_logger("registry.test").warning(
        "checked", name="Karimov", birth_date="1990-01-01", outcome="ok"
    )
    logging.getLogger("registry.test").warning("from the standard library")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    first = next(line for line in lines if line["event"] == "checked")
    assert first["request_id"] == "req-123"
    assert first["name"] == "[redacted]" and first["birth_date"] == "[redacted]"
    assert first["outcome"] == "ok" and first["level"] == "warning"
    assert any(line["event"] == "from the standard library" for line in lines)
    assert "Karimov" not in json.dumps(lines)


@pytest.mark.parametrize("creatable", [True, False])
def test_a_missing_multiprocess_directory_is_made_or_metrics_stay_in_memory(
    tmp_path: Path, creatable: bool
) -> None:
    # as `registry init` runs under systemd, or the migration job on a read-only filesystem
    (tmp_path / "file").write_text("not a directory")
    directory = tmp_path / "run" / "prometheus" if creatable else tmp_path / "file" / "prometheus"
    probe = (
        "import os; from registry.operations.metrics import SUBMISSIONS; "
        "SUBMISSIONS.labels('accepted').inc(); print(os.environ.get('PROMETHEUS_MULTIPROC_DIR'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    if creatable:
        assert done.stdout.strip() == str(directory)
        assert [p.name.split("_")[0] for p in directory.iterdir()] == ["counter"]
    else:
        assert done.stdout.strip() == "None"
        assert not directory.exists()
