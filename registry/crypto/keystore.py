"""The registry's own keys under ``REGISTRY_KEYS_DIR``: signing keys per purpose and secrets."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry.crypto.keys import (
    KeyFormatError,
    PrivateKey,
    PublicKey,
    generate_key,
    load_private_jwk,
    private_jwk,
    public_jwk,
    read_jwk_file,
    save_private_jwk,
    thumbprint,
    write_private_file,
)

# token: access tokens; certificate: SMART Health Cards; document: receipts, trust lists, extracts.
PURPOSES = ("token", "certificate", "document")
SECRETS = ("data", "index", "rid", "log")  # log: the Ed25519 seed of the log's note key


@dataclass(frozen=True)
class RegistryKey:
    """One of the registry's signing keys."""

    kid: str
    purpose: str
    status: str  # active | retired
    created: str
    private_key: PrivateKey

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The JWK as published: EC P-256, use sig, alg ES256, kid."""
        return {**public_jwk(self.private_key), "kid": self.kid, "use": "sig", "alg": "ES256"}


class KeyStore:
    """Loads (and for local use creates) the registry's keys in one folder."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = Path(keys_dir)
        self._keys: dict[str, list[RegistryKey]] = {}
        self._secrets: dict[str, bytes] = {}
        self.created: list[str] = []

    # -- creation ---------------------------------------------------------------------------
    def ensure(self) -> list[str]:
        """Create whatever key or secret is missing; returns what was created."""
        created: list[str] = []
        for purpose in PURPOSES:
            if not list(self._purpose_dir(purpose).glob("*.private.jwk.json")):
                self.add_key(purpose)
                created.append(f"{purpose} signing key")
        for name in SECRETS:
            path = self.keys_dir / f"{name}.key"
            if not path.exists():
                write_private_file(path, base64.urlsafe_b64encode(os.urandom(32)) + b"\n")
                created.append(f"{name} secret")
        self._keys.clear()
        self._secrets.clear()
        self.created = created
        return created

    def describe_created(self) -> str:
        """What the last ``ensure`` created, for the command line."""
        return ", ".join(self.created) + " created" if self.created else "all present"

    def add_key(self, purpose: str) -> RegistryKey:
        """Add a new active key for ``purpose``; earlier active keys of it become retired."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown key purpose {purpose!r}")
        for existing in self._load_purpose(purpose):
            if existing.status == "active":
                self._write(existing.purpose, existing.private_key, existing.created, "retired")
        created = datetime.now(UTC).isoformat(timespec="seconds")
        jwk = self._write(purpose, generate_key(), created, "active")
        self._keys.pop(purpose, None)
        return next(k for k in self.keys(purpose) if k.kid == jwk["kid"])

    def _write(self, purpose: str, key: PrivateKey, created: str, status: str) -> dict[str, str]:
        kid = thumbprint(private_jwk(key))
        path = self._purpose_dir(purpose) / f"{kid}.private.jwk.json"
        return save_private_jwk(path, key, purpose=purpose, created=created, status=status)

    def _purpose_dir(self, purpose: str) -> Path:
        return self.keys_dir / purpose

    # -- reading ----------------------------------------------------------------------------
    def _load_purpose(self, purpose: str) -> list[RegistryKey]:
        found = []
        for path in sorted(self._purpose_dir(purpose).glob("*.private.jwk.json")):
            jwk = read_jwk_file(path)
            key = load_private_jwk(jwk)
            found.append(
                RegistryKey(
                    kid=str(jwk["kid"]),
                    purpose=purpose,
                    status=str(jwk.get("status", "active")),
                    created=str(jwk.get("created", "")),
                    private_key=key,
                )
            )
        return sorted(found, key=lambda k: k.created)

    def keys(self, purpose: str) -> list[RegistryKey]:
        """Every key of a purpose, oldest first."""
        if purpose not in self._keys:
            self._keys[purpose] = self._load_purpose(purpose)
        return self._keys[purpose]

    def active(self, purpose: str) -> RegistryKey:
        """The key that signs for ``purpose`` now."""
        active = [k for k in self.keys(purpose) if k.status == "active"]
        if not active:
            raise KeyFormatError(f"no active {purpose} key in {self.keys_dir}; run `registry init`")
        return active[-1]

    def find(self, kid: str) -> RegistryKey | None:
        """Any registry key by kid."""
        for purpose in PURPOSES:
            for key in self.keys(purpose):
                if key.kid == kid:
                    return key
        return None

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

    def jwks(self, purposes: tuple[str, ...] = PURPOSES) -> dict[str, Any]:
        """The public JWK Set of the given purposes."""
        return {"keys": [k.public_jwk() for p in purposes for k in self.keys(p)]}

    def describe(self) -> str:
        """A JSON summary (no private material) for the CLI."""
        summary = {p: [{"kid": k.kid, "status": k.status} for k in self.keys(p)] for p in PURPOSES}
        return json.dumps(summary, indent=2)
