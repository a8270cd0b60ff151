"""Settings from the environment, read in one place."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _b64_key(text: str) -> bytes:
    raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    if len(raw) != 32:
        raise ValueError("REGISTRY_DATA_KEY entries must be 32 bytes, base64url-encoded")
    return raw


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one registry instance."""

    instance_path: Path
    database_url: str
    base_url: str = "http://127.0.0.1:8000"
    keys_dir: Path = ROOT / "keys"
    data_keys: tuple[bytes, ...] = ()  # empty: read or generate keys_dir/data.key
    index_key: bytes | None = None  # empty: read or generate keys_dir/index.key
    ratelimit_storage: str = "memory://"
    verify_rate_limit: str = "60 per minute"
    token_rate_limit: str = "30 per minute"
    public_rate_limit: str = "600 per minute"  # anonymous reads per address, all public reads
    max_body_bytes: int = 2 * 1024 * 1024
    max_json_depth: int = 64
    max_bundle_entries: int = 500
    access_token_seconds: int = 300
    assertion_max_seconds: int = 300
    profiles_dir: Path = ROOT / "fhir_profiles"
    proxy_hops: int = 0  # reverse proxies in front (nginx: 1) whose X-Forwarded-* are trusted
    db_pool_size: int = 5
    referral_overdue_days: int = 30  # a referral open this long is flagged overdue
    # how often a running app reads the registry keys' statuses again (a rotation or a
    # compromise reaches every worker within this many seconds)
    key_refresh_seconds: float = 2.0
    # how often a worker asks whether the data behind the trust list and the key sets changed
    # (one small query); in between it answers from memory. Their Cache-Control allows 300 s.
    published_recheck_seconds: float = 1.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def token_url(self) -> str:
        """The audience that client assertions must name."""
        return f"{self.base_url}/oauth/token"

    @classmethod
    def from_env(
        cls, instance_path: Path, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Build settings from ``REGISTRY_*`` variables, then apply explicit overrides."""
        env = os.environ if environ is None else environ
        instance_path = Path(instance_path)
        settings = cls(
            instance_path=instance_path,
            database_url=env.get("REGISTRY_DATABASE_URL")
            or f"sqlite:///{instance_path / 'registry.sqlite3'}",
            base_url=env.get("REGISTRY_BASE_URL", cls.base_url).rstrip("/"),
            keys_dir=Path(env.get("REGISTRY_KEYS_DIR", str(cls.keys_dir))),
            data_keys=tuple(_b64_key(k) for k in env.get("REGISTRY_DATA_KEY", "").split(",") if k),
            index_key=_b64_key(env["REGISTRY_INDEX_KEY"])
            if env.get("REGISTRY_INDEX_KEY")
            else None,
            ratelimit_storage=env.get("REGISTRY_RATELIMIT_STORAGE", cls.ratelimit_storage),
            verify_rate_limit=env.get("REGISTRY_VERIFY_RATE_LIMIT", cls.verify_rate_limit),
            public_rate_limit=env.get("REGISTRY_PUBLIC_RATE_LIMIT", cls.public_rate_limit),
            max_body_bytes=int(env.get("REGISTRY_MAX_BODY_BYTES", cls.max_body_bytes)),
            proxy_hops=int(env.get("REGISTRY_PROXY_HOPS", cls.proxy_hops)),
            db_pool_size=int(env.get("REGISTRY_DB_POOL_SIZE", cls.db_pool_size)),
            referral_overdue_days=int(
                env.get("REGISTRY_REFERRAL_OVERDUE_DAYS", cls.referral_overdue_days)
            ),
            key_refresh_seconds=float(
                env.get("REGISTRY_KEY_REFRESH_SECONDS", cls.key_refresh_seconds)
            ),
            published_recheck_seconds=float(
                env.get("REGISTRY_PUBLISHED_RECHECK_SECONDS", cls.published_recheck_seconds)
            ),
        )
        return replace(settings, **overrides)
