"""`registry keys rotate`: a new active key, the old one retired but still published."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry.cli import main
from registry.crypto.keystore import KeyStore
from tests.support import World


@pytest.mark.committed
@pytest.mark.parametrize("purpose", ["document", "certificate"])
def test_rotation_keeps_the_old_key_published(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, purpose: str
) -> None:
    keys_dir = tmp_path / "keys"
    shutil.copytree(world.ctx.settings.keys_dir, keys_dir)
    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(keys_dir))
    monkeypatch.setenv("REGISTRY_DATABASE_URL", world.ctx.settings.database_url)
    before = KeyStore(keys_dir).active(purpose).kid
    result = CliRunner().invoke(main, ["keys", "rotate", "--purpose", purpose])
    assert result.exit_code == 0, result.output
    store = KeyStore(keys_dir)
    after = store.active(purpose).kid
    assert after != before
    assert f"{purpose} key {after} active; {before} retired" in result.output
    statuses = {k.kid: k.status for k in store.keys(purpose)}
    assert statuses[before] == "retired" and statuses[after] == "active"
    published = {k["kid"] for k in store.jwks()["keys"]}
    assert {before, after} <= published


def test_compromise_option_is_for_the_certificate_key_only(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(world.ctx.settings.keys_dir))
    monkeypatch.setenv("REGISTRY_DATABASE_URL", world.ctx.settings.database_url)
    result = CliRunner().invoke(
        main, ["keys", "rotate", "--purpose", "token", "--compromised-since", "2026-01-01"]
    )
    assert result.exit_code == 2
    assert "--compromised-since applies to the certificate key" in result.output
