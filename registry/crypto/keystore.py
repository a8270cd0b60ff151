"""The registry's own keys: signing keys per purpose, and secrets, under ``REGISTRY_KEYS_DIR``.

A signing key's private material is a file of the keys folder; its status (active, retired,
compromised) is a row of the ``registry_keys`` table. A running app reads the table again at
most every ``refresh_seconds`` (one small query) and loads the files of keys it has not seen,
so a key rotated or marked compromised by one process is what every worker of every replica
signs with, or stops signing with, within seconds and without a restart. Until ``registry
init`` has recorded the keys of a purpose, that purpose's files count with the status they
were written with; from then on a file never overrides the database.
"""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from registry.crypto.keys import (
    KeyFormatError,
    PrivateKey,
    PublicKey,
    generate_key,
    load_private_jwk,
    load_public_jwk,
    private_jwk,
    public_jwk,
    read_jwk_file,
    thumbprint,
    write_private_file,
)
from registry.crypto.models import RegistryKeyRecord

if TYPE_CHECKING:
    from registry.db import Database


class SigningKeyUnavailable(KeyFormatError):
    """No key of a purpose may sign here now (none recorded, or the last one compromised)."""


@dataclass(frozen=True)
class KeyPurpose:
    """What the keys of one purpose sign, and where they are published."""

    signs: str
    # the SMART Health Cards issuer key set (/.well-known/jwks.json) holds these keys only
    issuer_key_set: bool = False


# One line per purpose; every key is published with its purpose in /.well-known/registry-keys.json.
KEY_PURPOSES: dict[str, KeyPurpose] = {
    "token": KeyPurpose("access tokens (JWT, typ at+jwt)"),
    "certificate": KeyPurpose("SMART Health Cards (certificates)", issuer_key_set=True),
    "document": KeyPurpose("verification receipts, trust lists, surveillance extracts"),
}
PURPOSES = tuple(KEY_PURPOSES)
SECRETS = ("data", "index", "rid", "log")  # log: the Ed25519 seed of the log's note key
# at most one look at the database per this many seconds for a kid nobody knows
UNKNOWN_KID_GAP_SECONDS = 1.0


@dataclass(frozen=True)
class RegistryKey:
    """One of the registry's signing keys, with its status; the private part if it is here."""

    kid: str
    purpose: str
    status: str  # active | retired | compromised
    created_at: datetime
    public_key: PublicKey = field(repr=False, compare=False)
    compromised_since: datetime | None = None
    private: PrivateKey | None = field(default=None, repr=False, compare=False)
    recorded: bool = True  # False: a key file the database has not recorded yet

    @property
    def private_key(self) -> PrivateKey:
        if self.private is None:
            raise KeyFormatError(
                f"the private part of {self.purpose} key {self.kid} is not in the keys folder"
            )
        return self.private

    def public_jwk(self) -> dict[str, str]:
        """The JWK as the SMART Health Cards issuer key set has it: use sig, alg ES256, kid."""
        return {**public_jwk(self.public_key), "kid": self.kid, "use": "sig", "alg": "ES256"}

    def purpose_jwk(self) -> dict[str, Any]:
        """The JWK with what it may verify: alg, key_ops, the registry's purpose and status."""
        return {
            **public_jwk(self.public_key),
            "kid": self.kid,
            "alg": "ES256",
            "key_ops": ["verify"],
            "purpose": self.purpose,
            "status": self.status,
        }


@dataclass(frozen=True)
class _View:
    """The keys as last read: the table's rows (to notice a change) and every key by kid."""

    rows: tuple[tuple[Any, ...], ...]
    keys: dict[str, RegistryKey]


def _instant(text: Any) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(str(text))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class KeyStore:
    """The registry's keys in one folder; their statuses from the database once attached."""

    def __init__(self, keys_dir: Path, *, refresh_seconds: float = 2.0) -> None:
        self.keys_dir = Path(keys_dir)
        self.refresh_seconds = refresh_seconds
        self._db: Database | None = None
        self._files: dict[str, RegistryKey] = {}  # kid -> the key as its file was written
        self._view: _View | None = None
        self._checked_at = -math.inf
        self._looked_again_at = -math.inf
        self._lock = threading.Lock()
        self._secrets: dict[str, bytes] = {}
        self.created: list[str] = []

    def attach(self, db: Database) -> None:
        """Read key statuses from this database from now on."""
        self._db = db
        self._view = None

    # -- creation ---------------------------------------------------------------------------
    def ensure(self) -> list[str]:
        """Create whatever key or secret is missing; returns what was created."""
        created: list[str] = []
        for purpose in PURPOSES:
            if not list(self._purpose_dir(purpose).glob("*.private.jwk.json")):
                self.write_key(purpose)
                created.append(f"{purpose} signing key")
        for name in SECRETS:
            path = self.keys_dir / f"{name}.key"
            if not path.exists():
                write_private_file(path, base64.urlsafe_b64encode(os.urandom(32)) + b"\n")
                created.append(f"{name} secret")
        self._secrets.clear()
        self._view = None
        self.created = created
        return created

    def describe_created(self) -> str:
        """What the last ``ensure`` created, for the command line."""
        return ", ".join(self.created) + " created" if self.created else "all present"

    def write_key(self, purpose: str, *, now: datetime | None = None) -> RegistryKey:
        """A new key file for ``purpose``, written active; the database learns of it separately."""
        if purpose not in KEY_PURPOSES:
            raise ValueError(f"unknown key purpose {purpose!r}")
        created_at = now or datetime.now(UTC)
        key = generate_key()
        kid = thumbprint(private_jwk(key))
        written = RegistryKey(
            kid=kid,
            purpose=purpose,
            status="active",
            created_at=created_at,
            public_key=key.public_key(),
            private=key,
            recorded=False,
        )
        self._write_file(written)
        return written

    def mark_file(self, key: RegistryKey, status: str, since: datetime | None = None) -> None:
        """Write a key's new status into its file too, so a later ``registry init`` agrees."""
        if key.private is None:
            return  # this folder does not hold the key (another replica's copy does)
        self._write_file(
            RegistryKey(
                kid=key.kid,
                purpose=key.purpose,
                status=status,
                created_at=key.created_at,
                public_key=key.public_key,
                compromised_since=since,
                private=key.private,
            )
        )

    def _write_file(self, key: RegistryKey) -> None:
        jwk: dict[str, Any] = {
            **private_jwk(key.private_key),
            "kid": key.kid,
            "purpose": key.purpose,
            "created": key.created_at.isoformat(),
            "status": key.status,
        }
        if key.compromised_since is not None:
            jwk["compromised_since"] = key.compromised_since.isoformat()
        path = self._purpose_dir(key.purpose) / f"{key.kid}.private.jwk.json"
        partial = path.with_name(f".{path.name}.partial")
        write_private_file(partial, json.dumps(jwk, indent=2).encode("utf-8"))
        os.replace(partial, path)  # a reader sees the old file or the new one, never half
        self._files[key.kid] = key

    def _purpose_dir(self, purpose: str) -> Path:
        return self.keys_dir / purpose

    # -- the files --------------------------------------------------------------------------
    def key_files(self) -> list[RegistryKey]:
        """Every key file of the folder, as written (status from the file), oldest first."""
        for purpose in PURPOSES:
            for path in sorted(self._purpose_dir(purpose).glob("*.private.jwk.json")):
                kid = path.name.removesuffix(".private.jwk.json")
                if kid not in self._files:
                    self._files[kid] = self._read_file(path, purpose)
        return sorted(self._files.values(), key=lambda k: (k.created_at, k.kid))

    @staticmethod
    def _read_file(path: Path, purpose: str) -> RegistryKey:
        jwk = read_jwk_file(path)
        key = load_private_jwk(jwk)
        status = str(jwk.get("status", "active"))
        return RegistryKey(
            kid=str(jwk.get("kid") or thumbprint(jwk)),
            purpose=purpose,
            status=status if status in ("active", "retired", "compromised") else "retired",
            created_at=_instant(jwk.get("created")) or datetime.fromtimestamp(0, UTC),
            public_key=key.public_key(),
            compromised_since=_instant(jwk.get("compromised_since")),
            private=key,
            recorded=False,
        )

    # -- the statuses -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the statuses again now (and the files of keys not seen before)."""
        with self._lock:
            rows = self._rows()
            if self._view is None or rows != self._view.rows:
                self._view = self._build(rows)
            self._checked_at = time.time()

    def _current(self) -> _View:
        elapsed = time.time() - self._checked_at
        if self._view is None or not 0 <= elapsed < self.refresh_seconds:
            self.refresh()
        assert self._view is not None
        return self._view

    def _rows(self) -> tuple[tuple[Any, ...], ...]:
        if self._db is None:
            return ()
        with self._db.read_session() as session:
            found = session.execute(
                select(
                    RegistryKeyRecord.kid,
                    RegistryKeyRecord.purpose,
                    RegistryKeyRecord.status,
                    RegistryKeyRecord.created_at,
                    RegistryKeyRecord.compromised_since,
                    RegistryKeyRecord.changed_at,
                    RegistryKeyRecord.public_jwk,
                ).order_by(RegistryKeyRecord.kid)
            ).all()
        return tuple(
            (kid, purpose, status, created_at, since, changed_at, json.dumps(jwk, sort_keys=True))
            for kid, purpose, status, created_at, since, changed_at, jwk in found
        )

    def _build(self, rows: tuple[tuple[Any, ...], ...]) -> _View:
        files = {key.kid: key for key in self.key_files()}
        keys: dict[str, RegistryKey] = {}
        for kid, purpose, status, created_at, since, _changed, jwk in rows:
            if purpose not in KEY_PURPOSES:
                continue  # a purpose a newer release added: not ours to use
            file = files.get(kid)
            keys[kid] = RegistryKey(
                kid=kid,
                purpose=purpose,
                status=status,
                created_at=created_at,
                public_key=file.public_key if file else load_public_jwk(json.loads(jwk)),
                compromised_since=since,
                private=file.private if file else None,
            )
        # a purpose the database has no key of yet (before `registry init` recorded the
        # folder) counts its files as written; once it has one, the database alone decides
        recorded = {row[1] for row in rows}
        for kid, file in files.items():
            if file.purpose not in recorded:
                keys.setdefault(kid, file)
        return _View(rows=rows, keys=keys)

    # -- reading ----------------------------------------------------------------------------
    def version(self) -> tuple[tuple[Any, ...], ...]:
        """The key table's rows as last read: equal for as long as no key's status changed."""
        return self._current().rows

    def every_key(self) -> list[RegistryKey]:
        """Every key, compromised ones too, oldest first."""
        return sorted(self._current().keys.values(), key=lambda k: (k.created_at, k.kid))

    def keys(self, purpose: str) -> list[RegistryKey]:
        """The keys of a purpose that verify (active and retired), oldest first."""
        return [k for k in self.every_key() if k.purpose == purpose and k.status != "compromised"]

    def active(self, purpose: str) -> RegistryKey:
        """The key that signs for ``purpose`` now; never a compromised one.

        The newest active key whose private part is here; a replica that has not received the
        new key's file yet signs with the newest retired one it holds until it does.
        """
        here = [k for k in self.keys(purpose) if k.private is not None]
        if not here:
            raise SigningKeyUnavailable(
                f"no usable {purpose} key in {self.keys_dir}; run `registry init`, or "
                "`registry keys rotate` if the last one was compromised"
            )
        return max(here, key=lambda k: (k.status == "active", k.created_at, k.kid))

    def find(self, kid: str, *, purpose: str) -> RegistryKey | None:
        """A key of ``purpose`` that verifies, by kid; an unknown kid makes it look again."""
        key = self._current().keys.get(kid)
        if key is None and time.time() - self._looked_again_at >= UNKNOWN_KID_GAP_SECONDS:
            # a key made a moment ago by another worker: read the table now, not in a while
            self._looked_again_at = time.time()
            self.refresh()
            key = self._current().keys.get(kid)
        if key is None or key.purpose != purpose or key.status == "compromised":
            return None
        return key

    def compromised(self, kid: str) -> RegistryKey | None:
        """The key by kid if it is marked compromised."""
        key = self._current().keys.get(kid)
        return key if key is not None and key.status == "compromised" else None

    def secret(self, name: str) -> bytes:
        """A 32-byte secret (data, index, rid) from the keys folder."""
        if name not in self._secrets:
            path = self.keys_dir / f"{name}.key"
            try:
                text = path.read_text("ascii").strip()
            except OSError as exc:
                raise KeyFormatError(f"missing {path}; run `registry init`") from exc
            self._secrets[name] = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return self._secrets[name]

    def issuer_key_set(self) -> dict[str, Any]:
        """The SMART Health Cards issuer JWK Set: certificate keys only, never compromised ones."""
        return {
            "keys": [
                k.public_jwk()
                for purpose, kind in KEY_PURPOSES.items()
                if kind.issuer_key_set
                for k in self.keys(purpose)
            ]
        }

    def purpose_key_set(self) -> dict[str, Any]:
        """Every key that verifies, each with its purpose and status (never compromised ones)."""
        return {"keys": [k.purpose_jwk() for p in PURPOSES for k in self.keys(p)]}

    def describe(self) -> str:
        """A JSON summary (no private material) for the CLI."""
        summary: dict[str, list[dict[str, Any]]] = {p: [] for p in PURPOSES}
        for key in self.every_key():
            entry: dict[str, Any] = {"kid": key.kid, "status": key.status}
            if key.compromised_since is not None:
                entry["compromised_since"] = key.compromised_since.isoformat()
            if not key.recorded:
                entry["recorded"] = False
            if key.private is None:
                entry["private_part_here"] = False
            summary.setdefault(key.purpose, []).append(entry)
        return json.dumps(summary, indent=2)
