"""``/api/v1/clinics``: the public list of accredited clinics, and changes by accreditors."""

from __future__ import annotations

from typing import Any

from registry.accreditation import service
from registry.accreditation.models import Clinic, SigningKey
from registry.accreditation.schemas import (
    ClinicClientCreateSchema,
    ClinicClientSchema,
    ClinicCreateSchema,
    ClinicKeySchema,
    ClinicQuerySchema,
    ClinicSchema,
    ClinicStatusChangeSchema,
    KeyRegisterSchema,
    KeyStatusChangeSchema,
)
from registry.auth.models import Client
from registry.extensions import public_reads
from registry.web import Blueprint, authenticated, context, current_principal

blp = Blueprint(
    "clinics",
    __name__,
    url_prefix="/api/v1/clinics",
    description="Accredited clinics: public list; changes by the accreditor of their country",
)

public_reads(blp)


@blp.route("")
@blp.arguments(ClinicQuerySchema, location="query")
@blp.response(200, ClinicSchema(many=True))
def list_clinics(query: dict[str, Any]) -> list[Clinic]:
    """List clinics with their accreditation status, history and keys."""
    with context().db.reading() as uow:
        return list(service.list_clinics(uow, **query))


@blp.route("", methods=["POST"])
@authenticated(action="clinic.manage")
@blp.arguments(ClinicCreateSchema)
@blp.response(201, ClinicSchema)
def create_clinic(body: dict[str, Any]) -> Clinic:
    """Accredit a clinic (accreditor of its country, or admin)."""
    principal = current_principal()
    with context().db.unit_of_work() as uow:
        clinic = service.add_clinic(uow, principal=principal, clinic_id=body.pop("id"), **body)
        uow.commit()
        return clinic


@blp.route("/<clinic_id>")
@blp.response(200, ClinicSchema)
def get_clinic(clinic_id: str) -> Clinic:
    """One clinic."""
    with context().db.reading() as uow:
        return service.get_clinic(uow, clinic_id)


@blp.route("/<clinic_id>/status", methods=["POST"])
@authenticated(action="clinic.manage")
@blp.arguments(ClinicStatusChangeSchema)
@blp.response(200, ClinicSchema)
def change_status(body: dict[str, Any], clinic_id: str) -> Clinic:
    """Suspend, reinstate or withdraw a clinic, with a reason."""
    principal = current_principal()
    with context().db.unit_of_work() as uow:
        clinic = service.change_clinic_status(uow, principal=principal, clinic_id=clinic_id, **body)
        uow.commit()
        return clinic


@blp.route("/<clinic_id>/keys", methods=["POST"])
@authenticated(action="clinic.manage")
@blp.arguments(KeyRegisterSchema)
@blp.response(201, ClinicKeySchema)
def register_key(body: dict[str, Any], clinic_id: str) -> SigningKey:
    """Register a clinic-held public signing key (EC P-256 JWK)."""
    principal = current_principal()
    with context().db.unit_of_work() as uow:
        key = service.register_key(uow, principal=principal, clinic_id=clinic_id, jwk=body["jwk"])
        uow.commit()
        return key


@blp.route("/<clinic_id>/keys/<kid>/status", methods=["POST"])
@authenticated(action="clinic.manage")
@blp.arguments(KeyStatusChangeSchema)
@blp.response(200, ClinicKeySchema)
def change_key_status(body: dict[str, Any], clinic_id: str, kid: str) -> SigningKey:
    """Retire a clinic key or mark it compromised as of a time."""
    principal = current_principal()
    with context().db.unit_of_work() as uow:
        key = service.change_key_status(
            uow, principal=principal, clinic_id=clinic_id, kid=kid, **body
        )
        uow.commit()
        return key


@blp.route("/<clinic_id>/clients", methods=["POST"])
@authenticated(action="clinic.manage")
@blp.arguments(ClinicClientCreateSchema)
@blp.response(201, ClinicClientSchema)
def create_client(body: dict[str, Any], clinic_id: str) -> Client:
    """Create the clinic's API client from the public key the clinic generated (accreditor)."""
    principal = current_principal()
    with context().db.unit_of_work() as uow:
        client = service.add_clinic_client(uow, principal=principal, clinic_id=clinic_id, **body)
        uow.commit()
        return client
