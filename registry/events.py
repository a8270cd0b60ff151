"""Domain events and the message bus that hands them to their subscribers.

A service publishes an event on its unit of work (``uow.publish(event)``); the bus calls every
handler subscribed to the event's type, in the order registry/subscriptions.py lists them,
synchronously and inside the same transaction. A handler that fails fails the whole unit of
work, so atomicity is what it was when the services called each other by hand; what changes
is that the publisher does not know who listens.

Events name what happened in the past tense and carry the objects a subscriber needs; they are
not stored (the audit log is what is stored).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the events name feature tables only for type checking
    from registry.accreditation.models import Clinic
    from registry.auth.principal import Principal
    from registry.certificates.models import Certificate
    from registry.db import UnitOfWork
    from registry.examinations.models import Examination, ExaminationVersion
    from registry.fhir.record import ExaminationRecord


class Event:
    """Something that happened, published on a unit of work."""


@dataclass(frozen=True)
class VersionStored(Event):
    """A new examination version is stored and current (the first, or an amendment's)."""

    examination: Examination
    version: ExaminationVersion
    record: ExaminationRecord
    clinic: Clinic
    actor: Principal
    now: datetime
    replaces: ExaminationVersion | None = None


@dataclass(frozen=True)
class SubmissionReplayed(Event):
    """The same examination was submitted again (idempotent replay): nothing new is stored.

    Subscribers answer what the first submission learnt from them (the certificates' verdicts),
    so that a clinic that lost the first answer gets it again.
    """

    examination: Examination
    version: ExaminationVersion
    record: ExaminationRecord


@dataclass(frozen=True)
class VersionRetired(Event):
    """A version stops being current: ``amended`` (a new version follows) or withdrawn."""

    examination: Examination
    version: ExaminationVersion
    reason: str
    actor: Principal
    now: datetime

    @property
    def withdrawn(self) -> bool:
        return self.version.status == "entered-in-error"


@dataclass(frozen=True)
class CertificateIssued(Event):
    certificate: Certificate
    now: datetime


@dataclass(frozen=True)
class CertificateRevoked(Event):
    certificate: Certificate
    reason: str
    now: datetime


@dataclass(frozen=True)
class ClinicStatusChanged(Event):
    clinic: Clinic
    status: str
    effective_at: datetime


@dataclass(frozen=True)
class KeyCompromised(Event):
    """A clinic signing key is marked compromised as of ``since`` (possibly in the past)."""

    kid: str
    since: datetime
    actor: Any  # an audit actor: a principal or the registry itself
    now: datetime


@dataclass(frozen=True)
class ClinicKeyChanged(Event):
    """A clinic signing key was registered (``active``), retired or marked compromised."""

    kid: str
    clinic: Clinic
    status: str
    effective_at: datetime


@dataclass(frozen=True)
class RegistryKeyChanged(Event):
    """One of the registry's own keys became active, retired or compromised (``since``)."""

    kid: str
    purpose: str
    status: str
    since: datetime


@dataclass(frozen=True)
class SurveillanceReleased(Event):
    """Protected surveillance cells were published (``digest``: SHA-256 of the cells)."""

    ministry: str
    data_version: str
    digest: str


@dataclass(frozen=True)
class ReferralsCompleted(Event):
    """The number of completed programme referrals of an examination changed."""

    examination_id: str
    now: datetime


Handler = Callable[["UnitOfWork", Any], Any]


class MessageBus:
    """Event type -> its handlers, in order; ``handle`` runs them and gathers what they return."""

    def __init__(self, handlers: Mapping[type[Event], Sequence[Handler]]) -> None:
        self.handlers = {kind: tuple(found) for kind, found in handlers.items()}

    def handle(self, uow: UnitOfWork, event: Event) -> list[Any]:
        """Run every handler of the event; the items of the iterables they return, in order."""
        gathered: list[Any] = []
        for handler in self.handlers.get(type(event), ()):
            returned = handler(uow, event)
            if isinstance(returned, Iterable) and not isinstance(returned, (str, bytes)):
                gathered.extend(returned)
        return gathered


NO_SUBSCRIBERS = MessageBus({})
