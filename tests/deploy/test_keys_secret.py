"""deploy/keys_secret.py: the keys folder survives the trip through a Kubernetes Secret."""

from __future__ import annotations

import runpy
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from registry.crypto.keystore import PURPOSES, SECRETS, KeyStore

from .conftest import DEPLOY


@pytest.fixture(scope="module")
def keys_secret() -> dict:
    return runpy.run_path(str(DEPLOY / "keys_secret.py"))


def _mount_like_kubelet(entries: dict[str, Path], directory: Path) -> Path:
    """A Secret volume as kubelet lays it out: files in a timestamped folder, symlinks on top."""
    payload = directory / "..2026_01_31_10_00_00.123456789"
    payload.mkdir(parents=True)
    for name, source in entries.items():
        (payload / name).write_bytes(source.read_bytes())
    (directory / "..data").symlink_to(payload.name)
    for name in entries:
        (directory / name).symlink_to(f"..data/{name}")
    return directory


def test_keys_written_by_registry_init_come_back_identical(keys_secret, tmp_path):
    original = tmp_path / "registry-keys"
    KeyStore(original).ensure()
    entries = keys_secret["secret_entries"](original)
    assert {name.split("__", 1)[0] for name in entries if "__" in name} == set(PURPOSES)
    assert {f"{name}.key" for name in SECRETS} <= set(entries)

    mounted = _mount_like_kubelet(entries, tmp_path / "secret")
    restored = tmp_path / "run" / "registry-keys"
    keys_secret["unpack"](mounted, restored)

    assert KeyStore(restored).ensure() == []  # nothing missing, nothing created
    before, after = KeyStore(original), KeyStore(restored)
    for purpose in PURPOSES:
        assert [k.kid for k in after.keys(purpose)] == [k.kid for k in before.keys(purpose)]
    for name in SECRETS:
        assert after.secret(name) == before.secret(name)
    for path in restored.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_from_file_args_name_every_file_for_kubectl(keys_secret, tmp_path, capsys):
    keys_dir = tmp_path / "registry-keys"
    KeyStore(keys_dir).ensure()
    keys_secret["main"](["from-file-args", str(keys_dir)])
    arguments = capsys.readouterr().out.split()
    files = {Path(a.split("=", 2)[2]) for a in arguments}
    assert all(a.startswith("--from-file=") for a in arguments)
    assert files == {p for p in keys_dir.rglob("*") if p.is_file()}


def test_an_empty_keys_folder_is_refused(keys_secret, tmp_path):
    with pytest.raises(ValueError, match="run `registry init` first"):
        keys_secret["secret_entries"](tmp_path)
    (tmp_path / "secret").mkdir()
    with pytest.raises(SystemExit, match="create the registry-signing-keys Secret"):
        keys_secret["unpack"](tmp_path / "secret", tmp_path / "keys")


def test_folders_deeper_than_one_level_are_refused(keys_secret, tmp_path):
    deep = tmp_path / "token" / "old"
    deep.mkdir(parents=True)
    (deep / "x.private.jwk.json").write_text("{}")
    with pytest.raises(ValueError, match="cannot store"):
        keys_secret["secret_entries"](tmp_path)


def test_unpack_runs_as_a_script(tmp_path):
    keys_dir = tmp_path / "registry-keys"
    KeyStore(keys_dir).ensure()
    mounted = tmp_path / "secret"
    mounted.mkdir()
    for path in keys_dir.rglob("*"):
        if path.is_file():
            (mounted / "__".join(path.relative_to(keys_dir).parts)).write_bytes(path.read_bytes())
    restored = tmp_path / "restored"
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "keys_secret.py"), "unpack", str(mounted), str(restored)],
        capture_output=True,
        text=True,
        check=True,
    )
    count = sum(1 for p in keys_dir.rglob("*") if p.is_file())
    assert result.stdout == f"{count} key files in {restored}\n"
