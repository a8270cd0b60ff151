"""Domain errors: services raise these; one handler in ``registry.web`` maps them to HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Issue:
    """One problem found in a request, in the shape of a FHIR OperationOutcome.issue."""

    code: str  # FHIR issue-type: invalid, structure, required, value, code-invalid, ...
    diagnostics: str
    location: str | None = None  # FHIRPath-like, e.g. "Bundle.entry[3].resource.gender"
    severity: str = "error"


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    status = 400
    error = "bad_request"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(DomainError):
    status = 400
    error = "bad_request"


class Unauthorized(DomainError):
    status = 401
    error = "invalid_token"


class Forbidden(DomainError):
    status = 403
    error = "forbidden"


class NotFound(DomainError):
    status = 404
    error = "not_found"


class Conflict(DomainError):
    status = 409
    error = "conflict"


class StoredDataUnreadable(DomainError):
    """A stored sealed value does not open (corrupted, swapped between rows, or a missing key).

    Not the caller's fault and not retryable: the answer says so, and every occurrence is
    audited so an operator restores the row from a backup.
    """

    status = 500
    error = "integrity_error"


class PayloadTooLarge(DomainError):
    status = 413
    error = "payload_too_large"


@dataclass
class InvalidResource(DomainError):
    """A FHIR resource (or anything answered as an OperationOutcome) failed our checks: 422."""

    issues: list[Issue] = field(default_factory=list)
    status = 422
    error = "unprocessable"

    def __post_init__(self) -> None:
        summary = "; ".join(i.diagnostics for i in self.issues[:3]) or "invalid resource"
        DomainError.__init__(self, summary)
