"""Accredit, suspend and withdraw clinics; register, generate, retire and compromise their keys."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.accreditation.models import (
    CLINIC_STATUSES,
    PURPOSES,
    Clinic,
    ClinicStatusEvent,
    Jurisdiction,
    KeyStatusEvent,
    SigningKey,
)
from registry.accreditation.status import signing_key_context
from registry.audit.service import record
from registry.auth import service as clients
from registry.auth.models import Client
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.crypto.keys import (
    KeyFormatError,
    generate_key,
    load_public_jwk,
    private_jwk,
    public_jwk,
    thumbprint,
)
from registry.db import UnitOfWork, utcnow
from registry.errors import BadRequest, Conflict, NotFound
from registry.events import ClinicKeyChanged, ClinicStatusChanged, KeyCompromised

CLINIC_ID = re.compile(r"^[A-Z]{2}-[A-Z]{3}-\d{4}$")


# -- clinics ---------------------------------------------------------------------------------
def _clinic(session: Session, clinic_id: str) -> Clinic:
    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(f"no clinic {clinic_id!r}")
    return clinic


def get_clinic(uow: UnitOfWork, clinic_id: str) -> Clinic:
    """One clinic by registry id."""
    return _clinic(uow.session, clinic_id)


def list_clinics(
    uow: UnitOfWork, *, country: str | None = None, status: str | None = None
) -> Sequence[Clinic]:
    """Clinics, optionally of one country and/or current status, ordered by id."""
    query = select(Clinic).order_by(Clinic.id)
    if country:
        query = query.where(Clinic.country == country.upper())
    if status:
        query = query.where(Clinic.status == status)
    return uow.session.scalars(query).all()


def add_clinic(
    uow: UnitOfWork,
    *,
    principal: Principal,
    clinic_id: str,
    name: str,
    country: str,
    purposes: Sequence[str],
    accredited_from: date,
    accredited_until: date | None = None,
    city: str | None = None,
    annual_quota: int | None = None,
) -> Clinic:
    """Accredit a new clinic (status active from now)."""
    session = uow.session
    country = country.upper()
    authorize(principal, "clinic.manage", countries=(country,))
    if not CLINIC_ID.match(clinic_id):
        raise BadRequest("clinic id must look like TJ-DUS-0007 (country-city-number)")
    if clinic_id[:2] != country:
        raise BadRequest(f"clinic id {clinic_id} does not start with its country {country}")
    jurisdiction = session.get(Jurisdiction, country)
    if jurisdiction is None or not jurisdiction.participating:
        raise BadRequest(f"{country} is not a participating jurisdiction")
    unknown = sorted(set(purposes) - set(PURPOSES))
    if unknown or not purposes:
        raise BadRequest(f"purposes must be among {', '.join(PURPOSES)}; got {unknown or 'none'}")
    if accredited_until is not None and accredited_until < accredited_from:
        raise BadRequest("accredited_until is before accredited_from")
    now = utcnow()
    clinic = Clinic(
        id=clinic_id,
        name=name,
        country=country,
        city=city,
        status="active",
        accredited_from=accredited_from,
        accredited_until=accredited_until,
        purposes=sorted(set(purposes), key=PURPOSES.index),
        annual_quota=annual_quota,
        created_at=now,
        history=[],
        keys=[],
    )
    session.add(clinic)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"clinic {clinic_id} already exists") from exc
    clinic.history.append(
        ClinicStatusEvent(
            status="active",
            # accreditation runs from the window's first day, often before registration here
            effective_at=datetime.combine(accredited_from, time.min, UTC),
            recorded_at=now,
            reason="accredited",
            actor=principal.actor_id,
        )
    )
    uow.publish(
        ClinicStatusChanged(clinic, "accredited", effective_at=clinic.history[-1].effective_at)
    )
    record(
        session,
        actor=principal,
        action="clinic.create",
        object_type="Clinic",
        object_id=clinic_id,
        detail={"country": country, "purposes": clinic.purposes},
    )
    return clinic


def change_clinic_status(
    uow: UnitOfWork,
    *,
    principal: Principal,
    clinic_id: str,
    status: str,
    reason: str,
    effective_at: datetime | None = None,
) -> Clinic:
    """Suspend, reinstate or withdraw a clinic; withdrawal is final."""
    session = uow.session
    clinic = _clinic(session, clinic_id)
    authorize(principal, "clinic.manage", countries=(clinic.country,))
    if status not in CLINIC_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(CLINIC_STATUSES)}")
    if not reason or not reason.strip():
        raise BadRequest("a reason is required for a change of accreditation status")
    if clinic.status == "withdrawn":
        raise Conflict(f"clinic {clinic_id} was withdrawn; accredit it anew under a new id")
    if clinic.status == status:
        raise Conflict(f"clinic {clinic_id} is already {status}")
    now = utcnow()
    when = effective_at or now
    if when.tzinfo is None:
        raise BadRequest("effective_at needs a time zone")
    if when > now:
        raise BadRequest("effective_at may not be in the future; record the change when it happens")
    clinic.history.append(
        ClinicStatusEvent(
            status=status,
            effective_at=when,
            recorded_at=now,
            reason=reason.strip(),
            actor=principal.actor_id,
        )
    )
    clinic.status = status
    uow.publish(ClinicStatusChanged(clinic, status, effective_at=when))
    record(
        session,
        actor=principal,
        action=f"clinic.{status}",
        object_type="Clinic",
        object_id=clinic_id,
        detail={"status": status, "effective_at": when.isoformat()},
    )
    return clinic


# -- clinic keys -----------------------------------------------------------------------------
def _new_key_row(clinic: Clinic, public: dict[str, str], custody: str) -> SigningKey:
    kid = thumbprint(public)
    return SigningKey(
        kid=kid,
        clinic_id=clinic.id,
        custody=custody,
        public_jwk={**public, "kid": kid, "use": "sig", "alg": "ES256"},
        status="active",
        created_at=utcnow(),
        history=[],
    )


def _store_key(uow: UnitOfWork, principal: Principal, key: SigningKey) -> SigningKey:
    session = uow.session
    if session.get(SigningKey, key.kid) is not None:
        raise Conflict(f"key {key.kid} is already registered")
    session.add(key)
    session.flush()
    assert key.clinic is not None
    uow.publish(ClinicKeyChanged(key.kid, key.clinic, "active", effective_at=key.created_at))
    record(
        session,
        actor=principal,
        action="key.create",
        object_type="SigningKey",
        object_id=key.kid,
        detail={"clinic": key.clinic_id, "custody": key.custody},
    )
    return key


def register_key(
    uow: UnitOfWork, *, principal: Principal, clinic_id: str, jwk: dict[str, Any]
) -> SigningKey:
    """Register a clinic-held public key (the private part never reaches the registry)."""
    clinic = _clinic(uow.session, clinic_id)
    authorize(principal, "clinic.manage", countries=(clinic.country,))
    if "d" in jwk:
        raise BadRequest("send the public key only: the JWK contains the private member 'd'")
    try:
        public = public_jwk(load_public_jwk(jwk))
    except KeyFormatError as exc:
        raise BadRequest(f"clinic key: {exc}") from exc
    return _store_key(uow, principal, _new_key_row(clinic, public, "clinic-held"))


def generate_clinic_key(
    uow: UnitOfWork,
    *,
    principal: Principal,
    clinic_id: str,
    custody: str,
) -> tuple[SigningKey, dict[str, str] | None]:
    """Generate a key; custodial keys are sealed in the database, clinic-held ones are returned."""
    cipher = uow.cipher
    clinic = _clinic(uow.session, clinic_id)
    authorize(principal, "clinic.manage", countries=(clinic.country,))
    if custody not in ("clinic-held", "custodial"):
        raise BadRequest("custody is clinic-held or custodial")
    private_key = generate_key()
    row = _new_key_row(clinic, public_jwk(private_key), custody)
    secret = {**private_jwk(private_key), "kid": row.kid}
    if custody == "custodial":
        row.sealed_private_jwk = cipher.encrypt(
            json.dumps(secret).encode(), context=signing_key_context(row.kid)
        )
        _store_key(uow, principal, row)
        return row, None
    _store_key(uow, principal, row)
    return row, secret


def change_key_status(
    uow: UnitOfWork,
    *,
    principal: Principal,
    kid: str,
    status: str,
    reason: str,
    clinic_id: str | None = None,
    effective_at: datetime | None = None,
) -> SigningKey:
    """Retire a key, or mark it compromised as of the (possibly past) compromise time."""
    session = uow.session
    key = session.get(SigningKey, kid)
    if key is None or key.clinic is None or (clinic_id and key.clinic_id != clinic_id):
        raise NotFound(f"no key {kid!r} of clinic {clinic_id or 'any'}")
    authorize(principal, "clinic.manage", countries=(key.clinic.country,))
    if status not in ("retired", "compromised"):
        raise BadRequest("a key can be marked retired or compromised")
    if key.status == "compromised":
        raise Conflict(f"key {kid} is already marked compromised")
    if key.status == status:
        raise Conflict(f"key {kid} is already {status}")
    now = utcnow()
    when = effective_at or now
    if when.tzinfo is None:
        raise BadRequest("effective_at needs a time zone")
    if when > now:
        raise BadRequest("effective_at may not be in the future")
    key.history.append(
        KeyStatusEvent(status=status, effective_at=when, recorded_at=now, reason=reason)
    )
    key.status = status
    uow.publish(ClinicKeyChanged(kid, key.clinic, status, effective_at=when))
    if status == "compromised":
        # what was signed with the key from the compromise on cannot be trusted: the
        # certificates feature revokes it in this same transaction
        uow.publish(KeyCompromised(kid, since=when, actor=principal, now=now))
    record(
        session,
        actor=principal,
        action=f"key.{status}",
        object_type="SigningKey",
        object_id=kid,
        detail={"effective_at": when.isoformat(), "clinic": key.clinic_id},
    )
    return key


# -- the clinic's API client -----------------------------------------------------------------
def add_clinic_client(
    uow: UnitOfWork,
    *,
    principal: Principal,
    clinic_id: str,
    jwk: dict[str, Any],
    name: str | None = None,
    client_id: str | None = None,
) -> Client:
    """Create the API client a clinic signs in with, from the public key the clinic made.

    The accreditor of the clinic's country does this without the operator: the clinic
    generated the key pair itself and keeps the private half.
    """
    clinic = _clinic(uow.session, clinic_id)
    authorize(principal, "clinic.manage", countries=(clinic.country,))
    if clinic.status == "withdrawn":
        raise Conflict(f"clinic {clinic_id} was withdrawn; it gets no new API client")
    if "d" in jwk:
        raise BadRequest("send the public key only: the JWK contains the private member 'd'")
    try:
        kid = thumbprint(public_jwk(load_public_jwk(jwk)))
    except KeyFormatError as exc:
        raise BadRequest(f"client key: {exc}") from exc
    return clients.add_client(
        uow,
        actor=principal,
        name=name or f"{clinic.name} (clinic portal)",
        role="clinic",
        jwk=jwk,
        clinic_id=clinic.id,
        client_id=client_id or f"clinic-{clinic.id.lower()}-{kid[:8].lower()}",
    )
