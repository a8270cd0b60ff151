"""Why a certificate stopped being valid, in one word: what verifiers and the holder are told.

A revocation's own text is for the clinic (a clinic's reason may say more than an employer may
learn); what leaves the registry is one of these codes, which the pages translate. The texts
written by the registry itself start with their code (``key-compromise: …``,
``ruleset-changed: …``) or are the fixed sentences of an amendment and a withdrawal.
"""

from __future__ import annotations

AMENDED = "amended"  # superseded: the clinic corrected the examination, a new certificate exists
ENTERED_IN_ERROR = "entered-in-error"  # the clinic withdrew the examination record
KEY_COMPROMISE = "key-compromise"  # the examination's signing key was stolen
RULESET_CHANGED = "ruleset-changed"  # the destination's rules changed and are no longer met
REVOKED_BY_ISSUER = "revoked-by-issuer"  # the clinic, its accreditor or the registry revoked it
REVOCATION_CODES = (AMENDED, ENTERED_IN_ERROR, KEY_COMPROMISE, RULESET_CHANGED, REVOKED_BY_ISSUER)

# The fixed reasons the examination service gives when it retires a version.
AMENDMENT_REASON = "superseded by an amended examination"
WITHDRAWAL_REASON = "examination entered in error"


def revocation_code(status: str, reason: str | None) -> str | None:
    """The code of a certificate's end: None while it is valid."""
    if status == "valid":
        return None
    if status == "superseded":
        return AMENDED
    text = (reason or "").strip()
    for code in (KEY_COMPROMISE, RULESET_CHANGED):
        if text == code or text.startswith(f"{code}:"):
            return code
    if text == WITHDRAWAL_REASON:
        return ENTERED_IN_ERROR
    if text == AMENDMENT_REASON:
        return AMENDED
    return REVOKED_BY_ISSUER
