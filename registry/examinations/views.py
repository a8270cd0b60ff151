"""``/api/v1/examinations``: submit, read, amend and withdraw signed FHIR examination bundles."""

from __future__ import annotations

from typing import Any

from flask import Response, request, url_for

from registry.errors import DomainError, InvalidResource, Issue
from registry.examinations import linkage, register, service
from registry.examinations.schemas import (
    ExaminationReceiptSchema,
    HistorySchema,
    LookupRequestSchema,
    LookupSchema,
    PurposeOfUseSchema,
    RegisterQuerySchema,
    RegisterSchema,
    VersionQuerySchema,
    WithdrawSchema,
)
from registry.operations.metrics import SUBMISSIONS
from registry.web import Blueprint, as_caller, authenticated, context, current_principal

blp = Blueprint(
    "examinations",
    __name__,
    url_prefix="/api/v1/examinations",
    description="Signed FHIR examination records from accredited clinics",
)

persons_blp = Blueprint(
    "persons",
    __name__,
    url_prefix="/api/v1/persons",
    description="Whether a person already holds a valid certificate (nothing medical)",
)

FHIR_BODY = {
    "requestBody": {
        "required": True,
        "description": "A FHIR R4 Bundle of type document (see fhir_profiles/README.md), signed "
        "by the clinic (Bundle.signature) or unsigned for a clinic with a custodial key.",
        "content": {"application/fhir+json": {"schema": {"type": "object"}}},
    }
}


def _body() -> bytes:
    if request.mimetype not in ("application/fhir+json", "application/json"):
        raise InvalidResource(
            issues=[Issue("structure", "send the bundle as application/fhir+json", "Bundle")]
        )
    return request.get_data(cache=False)


def _receipt(submission: service.Submission) -> dict[str, Any]:
    examination, version = submission.examination, submission.version
    self_link = url_for("examinations.read", examination_id=examination.id)
    return {
        "id": examination.id,
        "version": version.version,
        "status": version.status,
        "purpose": version.purpose,
        "destination": version.destination,
        "examination_date": version.examination_date,
        "bundle_sha256": version.bundle_sha256,
        "signing_kid": version.signing_kid,
        "custodial": version.custodial,
        "created": submission.created,
        "assessments": [
            {
                "destination": a.destination,
                "met": a.met,
                "reasons": [
                    {"code": r.code, "concept": r.concept, "text": r.text} for r in a.reasons
                ],
                "certificate_id": a.certificate.id if a.certificate else None,
                "valid_from": a.certificate.valid_from if a.certificate else None,
                "valid_until": a.certificate.valid_until if a.certificate else None,
            }
            for a in submission.assessments
        ],
        "links": {
            "self": self_link,
            "amend": self_link,
            "withdraw": url_for("examinations.withdraw", examination_id=examination.id),
        },
    }


@blp.route("", methods=["POST"])
@authenticated
@blp.doc(**FHIR_BODY)
@blp.response(201, ExaminationReceiptSchema)
@blp.alt_response(200, schema=ExaminationReceiptSchema, description="identical resubmission")
@blp.alt_response(409, description="same identifier, different content: amend instead")
@blp.alt_response(422, description="FHIR OperationOutcome naming every problem")
def submit() -> Any:
    """Submit a signed (or, with a custodial key, unsigned) examination bundle."""
    ctx = context()
    principal = current_principal()
    try:
        with ctx.db.unit_of_work() as uow:
            submission = service.submit(
                uow,
                principal=principal,
                bundle_json=_body(),
            )
            uow.commit()
            receipt = _receipt(submission)
    except DomainError as exc:
        SUBMISSIONS.labels(outcome=exc.error).inc()
        raise
    SUBMISSIONS.labels(outcome="accepted" if submission.created else "replayed").inc()
    status = 201 if submission.created else 200
    return receipt, status, {"Location": receipt["links"]["self"]}


@blp.route("", methods=["GET"])
@authenticated(action="examination.read")
@blp.arguments(RegisterQuerySchema, location="query")
@blp.response(200, RegisterSchema)
def list_own(query: dict[str, Any]) -> Any:
    """The calling clinic's examinations, newest first, and its annual quota; audited."""
    return as_caller(
        register.list_examinations,
        search=query.get("q"),
        document_country=query.get("document_country"),
        status=query.get("status"),
        limit=query["limit"],
        offset=query["offset"],
    )


@blp.route("/<examination_id>", methods=["GET"])
@authenticated(action="examination.read")
@blp.arguments(VersionQuerySchema, location="query")
@blp.response(200, description="The bundle byte for byte as signed (application/fhir+json)")
def read(query: dict[str, Any], examination_id: str) -> Response:
    """The examination bundle exactly as signed (the examining clinic only)."""
    version, raw = as_caller(
        service.read_bundle, examination_id=examination_id, version=query.get("version")
    )
    response = Response(raw, mimetype="application/fhir+json")
    response.headers["ETag"] = f'"{version.bundle_sha256}"'
    response.headers["X-Examination-Version"] = str(version.version)
    response.headers["X-Examination-Status"] = version.status
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/<examination_id>", methods=["PUT"])
@authenticated
@blp.doc(**FHIR_BODY)
@blp.response(200, ExaminationReceiptSchema)
def amend(examination_id: str) -> Any:
    """Amend: a new version; the previous becomes ``amended`` and its certificates superseded."""
    ctx = context()
    with ctx.db.unit_of_work() as uow:
        submission = service.amend(
            uow,
            principal=current_principal(),
            examination_id=examination_id,
            bundle_json=_body(),
        )
        uow.commit()
        return _receipt(submission)


@blp.route("/<examination_id>/withdraw", methods=["POST"])
@authenticated(action="examination.submit")
@blp.arguments(WithdrawSchema)
@blp.response(200, ExaminationReceiptSchema)
def withdraw(body: dict[str, Any], examination_id: str) -> Any:
    """Withdraw: the examination is entered in error; its certificates are revoked."""
    ctx = context()
    with ctx.db.unit_of_work() as uow:
        submission = service.withdraw(
            uow,
            principal=current_principal(),
            examination_id=examination_id,
            reason=body["reason"],
        )
        uow.commit()
        return _receipt(submission)


@blp.route("/<examination_id>/history", methods=["GET"])
@authenticated(action="examination.read")
@blp.arguments(PurposeOfUseSchema, location="query")
@blp.response(200, HistorySchema)
@blp.alt_response(403, description="the migrant did not consent to sharing earlier examinations")
@blp.alt_response(404, description="not an examination of the calling clinic")
def history(query: dict[str, Any], examination_id: str) -> Any:
    """The person's earlier examinations, with the migrant's consent; audited."""
    return as_caller(
        linkage.examination_history,
        examination_id=examination_id,
        purpose_of_use=query["purpose_of_use"],
    )


@persons_blp.route("/lookup", methods=["POST"])
@authenticated(action="person.lookup")
@persons_blp.arguments(LookupRequestSchema)
@persons_blp.response(200, LookupSchema)
def lookup(body: dict[str, Any]) -> Any:
    """Does the person with this document and birth date hold a valid certificate? Audited."""
    return as_caller(
        linkage.lookup,
        document_country=body["document"]["country"],
        document_number=body["document"]["number"],
        birth_date=body["birth_date"],
        destination=body.get("destination"),
    )
