"""The registry's keys folder as a Kubernetes Secret, and back.

``REGISTRY_KEYS_DIR`` has subfolders (``token/``, ``certificate/``, ``document/`` holding
``<kid>.private.jwk.json``; ``data.key``, ``index.key``, ``rid.key`` at the top), but a Secret is
flat and ``kubectl create secret --from-file=DIR`` skips subfolders. So ``token/<kid>...`` is
stored as the entry ``token__<kid>...``, and an init container restores the folder in the pod:

    kubectl -n registry create secret generic registry-signing-keys \\
      $(python deploy/keys_secret.py from-file-args ./registry-keys)

    python deploy/keys_secret.py unpack /run/registry-keys-secret /run/registry-keys
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

SEPARATOR = "__"
_ENTRY = re.compile(r"^[-._a-zA-Z0-9]+$")  # what Kubernetes accepts as a Secret key


def secret_entries(keys_dir: Path) -> dict[str, Path]:
    """Secret entry name → file, for every file in the keys folder (one level of subfolders)."""
    entries: dict[str, Path] = {}
    for path in sorted(p for p in keys_dir.rglob("*") if p.is_file()):
        parts = path.relative_to(keys_dir).parts
        if len(parts) > 2 or any(SEPARATOR in part for part in parts[:-1]):
            raise ValueError(f"cannot store {path} in a Secret entry")
        name = SEPARATOR.join(parts)
        if not _ENTRY.match(name):
            raise ValueError(f"{name!r} is not a valid Secret key")
        entries[name] = path
    if not entries:
        raise ValueError(f"no keys in {keys_dir}; run `registry init` first")
    return entries


def unpack(secret_dir: Path, keys_dir: Path) -> list[Path]:
    """Write each Secret entry back to its place in the keys folder (files 0600, folders 0700)."""
    written = []
    for entry in sorted(secret_dir.iterdir()):
        # A mounted Secret also holds kubelet's bookkeeping: ..data and timestamped folders.
        if entry.name.startswith("..") or not entry.is_file():
            continue
        target = keys_dir.joinpath(*entry.name.split(SEPARATOR, 1))
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(entry.read_bytes())
        os.chmod(target, 0o600)
        written.append(target)
    if not written:
        raise SystemExit(f"no keys in {secret_dir}: create the registry-signing-keys Secret")
    return written


def main(argv: list[str] | None = None) -> None:
    """Command line: ``from-file-args KEYS_DIR`` or ``unpack SECRET_DIR KEYS_DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pack = commands.add_parser("from-file-args", help="print kubectl --from-file arguments")
    pack.add_argument("keys_dir", type=Path)
    restore = commands.add_parser("unpack", help="restore the keys folder from a mounted Secret")
    restore.add_argument("secret_dir", type=Path)
    restore.add_argument("keys_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "from-file-args":
        entries = secret_entries(args.keys_dir)
        print(" ".join(f"--from-file={name}={path}" for name, path in entries.items()))
    else:
        written = unpack(args.secret_dir, args.keys_dir)
        print(f"{len(written)} key files in {args.keys_dir}")


if __name__ == "__main__":
    main()
