"""`registry init` records the keys; `registry keys rotate` makes a new key active in the
database, the old one retired (still published) or compromised (withdrawn)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import delete, select

from registry.cli import main
from registry.crypto.models import RegistryKeyRecord
from tests.conftest import registry_app
from tests.support import World


@pytest.fixture
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    # rotation writes key files: a keys folder of its own
    with registry_app(database_url, tmp_path_factory.mktemp("cli-keys")) as app:
        yield app


@pytest.fixture
def cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(world.ctx.settings.keys_dir))
    monkeypatch.setenv("REGISTRY_DATABASE_URL", world.ctx.settings.database_url)


def _rows(world: World) -> dict[str, tuple[str, str]]:
    with world.ctx.db.reading() as uow:
        rows = uow.session.scalars(select(RegistryKeyRecord)).all()
        return {r.kid: (r.purpose, r.status) for r in rows}


def _published(world: World, document: str) -> dict[str, dict]:
    return {k["kid"]: k for k in world.http.get(f"/.well-known/{document}").json["keys"]}


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize("purpose", ["document", "certificate", "token"])
def test_rotation_keeps_the_old_key_published(world: World, purpose: str) -> None:
    before = world.ctx.keystore.active(purpose).kid
    result = CliRunner().invoke(main, ["keys", "rotate", "--purpose", purpose])
    assert result.exit_code == 0, result.output
    world.ctx.keystore.refresh()
    after = world.ctx.keystore.active(purpose).kid
    assert after != before
    assert f"{purpose} key {after} active; {before} retired (still published)" in result.output
    assert "within 2 seconds" in result.output
    rows = _rows(world)
    assert rows[before] == (purpose, "retired") and rows[after] == (purpose, "active")
    keys = _published(world, "registry-keys.json")
    assert {keys[before]["status"], keys[after]["status"]} == {"retired", "active"}
    assert keys[before]["purpose"] == keys[after]["purpose"] == purpose
    assert keys[after]["key_ops"] == ["verify"] and "d" not in keys[after]
    in_issuer_set = {before, after} & set(_published(world, "jwks.json"))
    assert in_issuer_set == ({before, after} if purpose == "certificate" else set())


@pytest.mark.usefixtures("cli_env")
def test_a_compromised_certificate_key_is_listed_as_such_and_published_nowhere(
    world: World,
) -> None:
    before = world.ctx.keystore.active("certificate").kid
    result = CliRunner().invoke(
        main, ["keys", "rotate", "--compromised-since", "2026-01-01T00:00:00+00:00"]
    )
    assert result.exit_code == 0, result.output
    assert f"{before} compromised (no longer published)" in result.output
    listed = json.loads(CliRunner().invoke(main, ["keys", "list"]).output)
    (entry,) = [k for k in listed["certificate"] if k["kid"] == before]
    assert entry == {
        "kid": before,
        "status": "compromised",
        "compromised_since": "2026-01-01T00:00:00+00:00",
    }
    world.ctx.keystore.refresh()
    assert before not in _published(world, "jwks.json")
    assert before not in _published(world, "registry-keys.json")
    # the key file says so too, so that recording the folder again agrees with the database
    file = world.ctx.settings.keys_dir / "certificate" / f"{before}.private.jwk.json"
    assert json.loads(file.read_text())["status"] == "compromised"


@pytest.mark.usefixtures("cli_env")
def test_compromise_option_is_for_the_certificate_key_only() -> None:
    result = CliRunner().invoke(
        main, ["keys", "rotate", "--purpose", "token", "--compromised-since", "2026-01-01"]
    )
    assert result.exit_code == 2
    assert "--compromised-since applies to the certificate key" in result.output


@pytest.mark.usefixtures("cli_env")
def test_init_records_every_key_file_and_a_file_never_overrides_the_database(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys_dir: Path = world.ctx.settings.keys_dir
    files = {p.name.split(".")[0]: p.parent.name for p in keys_dir.glob("*/*.private.jwk.json")}
    assert sorted(files.values()) == ["certificate", "document", "token"]
    with world.ctx.db.unit_of_work() as uow:
        uow.session.execute(delete(RegistryKeyRecord))
        uow.commit()
    monkeypatch.setenv("REGISTRY_BASE_URL", "http://registry.test")
    first = CliRunner().invoke(main, ["init"])
    assert first.exit_code == 0, first.output
    assert _rows(world) == {kid: (purpose, "active") for kid, purpose in files.items()}
    token = world.ctx.keystore.active("token").kid

    # a token key file appears that the database never made active (a rotation that failed)
    stray = world.ctx.keystore.write_key("token")
    again = CliRunner().invoke(main, ["init"])
    assert again.exit_code == 0, again.output
    assert f"registry keys: token {stray.kid} retired recorded" in again.output
    assert _rows(world)[stray.kid] == ("token", "retired")
    world.ctx.keystore.refresh()
    assert world.ctx.keystore.active("token").kid == token
    third = CliRunner().invoke(main, ["init"])
    assert "registry keys: all recorded" in third.output
