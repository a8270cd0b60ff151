"""Fixtures of the verification tests."""

from __future__ import annotations

import pytest
from flask import Flask


@pytest.fixture
def cli_env(app: Flask) -> dict[str, str]:
    """The environment under which the `registry` command uses the test app's database and keys."""
    settings = app.extensions["registry"].settings
    return {
        "REGISTRY_DATABASE_URL": settings.database_url,
        "REGISTRY_KEYS_DIR": str(settings.keys_dir),
        "REGISTRY_BASE_URL": settings.base_url,
    }
