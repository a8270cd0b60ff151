"""Questions asked of a clinic or a key at a moment: a leaf module every feature may import.

The answers come from the dated status histories alone (no queries); the accreditation
service changes those histories.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time

from registry.accreditation.models import Clinic, ClinicStatusEvent, KeyStatusEvent, SigningKey
from registry.crypto.encryption import DataCipher
from registry.crypto.keys import PrivateKey, load_private_jwk
from registry.errors import BadRequest


def clinic_status_at(clinic: Clinic, when: datetime) -> str:
    """The clinic's status from its dated history as of ``when`` (``not-yet-registered`` before).

    Of the events in force at ``when``, the one recorded last wins, so a suspension recorded
    today with an earlier effective time overrides what was believed before it was known.
    """
    return _status_at(clinic.history, when, "not-yet-registered")


def _status_at(
    history: Sequence[ClinicStatusEvent | KeyStatusEvent], when: datetime, before: str
) -> str:
    in_force = [e for e in history if e.effective_at <= when]
    if not in_force:
        return before
    return max(in_force, key=lambda e: (e.recorded_at, e.id or 0)).status


def accreditation_at(clinic: Clinic, when: datetime) -> str:
    """``active`` only when the history says active and ``when`` lies in the window."""
    status = clinic_status_at(clinic, when)
    if status == "active":
        day = when.date()
        if day < clinic.accredited_from or (
            clinic.accredited_until is not None and day > clinic.accredited_until
        ):
            return "outside-accreditation-window"
    return status


def accredited_on(clinic: Clinic, day: date) -> bool:
    """Whether the clinic was accredited at some moment of ``day`` (UTC)."""
    return any(
        accreditation_at(clinic, moment) == "active"
        for moment in (
            datetime.combine(day, time.max, UTC),
            *(e.effective_at for e in clinic.history if e.effective_at.date() == day),
        )
    )


def key_status_at(key: SigningKey, when: datetime) -> str:
    """A key's status as of ``when``: ``not-yet-registered`` before it was created."""
    if when < key.created_at:
        return "not-yet-registered"
    return _status_at(key.history, when, "active")


def compromised_since(key: SigningKey) -> datetime | None:
    """When the key was compromised, if it ever was."""
    return next((e.effective_at for e in key.history if e.status == "compromised"), None)


def signing_key_context(kid: str) -> bytes:
    """What a custodial key's sealed private JWK is bound to: its kid."""
    return f"signing-key:{kid}".encode()


def custodial_private_key(key: SigningKey, cipher: DataCipher) -> PrivateKey:
    """Open a custodial key's sealed private part."""
    if key.custody != "custodial" or key.sealed_private_jwk is None:
        raise BadRequest(f"key {key.kid} is not held by the registry")
    return _opened_private_key(key.kid, key.sealed_private_jwk, cipher)


@functools.lru_cache(maxsize=64)
def _opened_private_key(kid: str, sealed: bytes, cipher: DataCipher) -> PrivateKey:
    # opened once per process and sealed form: decrypting and deriving the public point is
    # most of what signing a custodial bundle costs; the key's status is still read each time
    opened = cipher.decrypt(sealed, context=signing_key_context(kid))
    return load_private_jwk(json.loads(opened))
