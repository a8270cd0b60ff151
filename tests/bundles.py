"""Examination bundles for tests (see registry.examinations.examples), signed or not."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from registry.crypto.keys import PrivateKey
from registry.examinations.examples import EXAMPLES, examination_bundle
from registry.examinations.signing import sign_bundle

__all__ = ["EXAMPLES", "body", "examination_bundle", "signed"]


def signed(
    bundle: dict[str, Any], key: PrivateKey, kid: str, when: datetime | None = None
) -> dict[str, Any]:
    """The bundle signed by a clinic key (as `registry sign` does)."""
    return sign_bundle(bundle, key, kid=kid, when=when or datetime.now(UTC))


def body(bundle: dict[str, Any]) -> bytes:
    return json.dumps(bundle, ensure_ascii=False).encode("utf-8")
