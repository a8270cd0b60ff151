"""Who listens to which event: the one table of subscriptions, registered by create_app.

Handlers run in the order listed, in the publisher's transaction. For a stored version the
referrals come first (an amendment's completed referrals are counted), then the counts, the
audit event and last the certificates, whose assessments the submission's receipt shows.
"""

from __future__ import annotations

from collections.abc import Sequence

from registry.audit import service as audit
from registry.certificates import service as certificates
from registry.events import (
    CertificateIssued,
    CertificateRevoked,
    ClinicKeyChanged,
    ClinicStatusChanged,
    Event,
    Handler,
    KeyCompromised,
    MessageBus,
    ReferralsCompleted,
    RegistryKeyChanged,
    SubmissionReplayed,
    SurveillanceReleased,
    VersionRetired,
    VersionStored,
)
from registry.referrals import service as referrals
from registry.surveillance import service as surveillance
from registry.transparency import subscribers as transparency

SUBSCRIPTIONS: dict[type[Event], Sequence[Handler]] = {
    VersionStored: (
        referrals.on_version_stored,
        surveillance.on_version_stored,
        audit.on_version_stored,
        certificates.on_version_stored,
    ),
    VersionRetired: (
        surveillance.on_version_retired,
        referrals.on_version_retired,
        audit.on_version_retired,
        certificates.on_version_retired,
    ),
    SubmissionReplayed: (certificates.on_submission_replayed,),
    ReferralsCompleted: (surveillance.on_referrals_completed,),
    KeyCompromised: (certificates.on_key_compromised,),
    # what the transparency log records in public leaves
    CertificateIssued: (transparency.on_certificate_issued,),
    CertificateRevoked: (transparency.on_certificate_revoked,),
    ClinicStatusChanged: (transparency.on_clinic_status_changed,),
    ClinicKeyChanged: (transparency.on_clinic_key_changed,),
    RegistryKeyChanged: (transparency.on_registry_key_changed,),
    SurveillanceReleased: (transparency.on_surveillance_released,),
}


def message_bus() -> MessageBus:
    """The bus of a running app."""
    return MessageBus(SUBSCRIPTIONS)
