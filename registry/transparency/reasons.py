"""Why a certificate stopped being valid, as a code: one list for every place that names it.

The stored reason may hold clinical detail (a changed ruleset names what is no longer met) or a
clinic's own text, so it is never shown or published; its code is. The public log's
``certificate.revoked``, ``certificate.superseded`` and ``card.revoked`` leaves carry it, and the
holder's page, the clinic's register and the employer's verdict put it in words.
"""

from __future__ import annotations

REVOCATION_CODES = (
    "ruleset-changed",  # the destination's new rules, applied to issued certificates
    "key-compromise",  # the key that vouched for the examination was compromised
    "entered-in-error",  # the clinic withdrew the examination
    "superseded",  # an amended examination replaced it (a new certificate follows)
    "revoked-by-issuer",  # the clinic or its accreditor revoked it, with a reason of theirs
)
# the reasons the registry writes itself start with their code and a colon
_CODED = ("ruleset-changed", "key-compromise")
# what a withdrawal of the examination writes (registry/examinations/service.py)
ENTERED_IN_ERROR = "examination entered in error"


def reason_code(reason: str | None, *, superseded: bool = False) -> str:
    """The code of a revocation's stored reason; ``superseded`` when an amendment replaced it."""
    if superseded:
        return "superseded"
    prefix = (reason or "").split(":", 1)[0].strip()
    if prefix in _CODED:
        return prefix
    if (reason or "").strip() == ENTERED_IN_ERROR:
        return "entered-in-error"
    return "revoked-by-issuer"


def revocation_code(status: str, reason: str | None) -> str | None:
    """One of ``REVOCATION_CODES`` for a certificate no longer valid; None for a valid one."""
    if status == "valid":
        return None
    return reason_code(reason, superseded=status == "superseded")
