"""HL7 PurposeOfUse (codes of v3-ActReason): why a caller reads personal data, as one code.

Each kind of read accepts the codes that apply to its callers and refuses the rest, free text
included; the audit log records the code. One home for the code system, so the authority view
and a clinic's history read the same set.
"""

from __future__ import annotations

from collections.abc import Mapping

from registry.errors import BadRequest

SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"

# What a destination's authority may state when it reads an examination.
AUTHORITY: Mapping[str, str] = {
    "GOV": "government: a migration, work-permit or entry decision",
    "PUBHLTH": "public health: tuberculosis or HIV follow-up, contact tracing",
    "HCOMPL": "health compliance: checking the entry health requirements are met",
    "HLEGAL": "legal: a court or legal proceeding",
    "FRAUD": "fraud: investigating a suspected false certificate or borrowed identity",
}

# What a clinic examining the migrant now may state when it reads their earlier examinations.
CLINIC: Mapping[str, str] = {
    "TREAT": "treatment: the examination under way, or care that follows from it",
    "ETREAT": "emergency treatment",
    "COC": "coordination of care: a return examination, a referral to a programme facility",
    "CAREMGT": "care management: follow-up of a finding",
    "PATRQT": "patient requested: the migrant asked the clinic to look",
}


def accepted(code: str | None, codes: Mapping[str, str]) -> str:
    """The stated code when it is one of ``codes``; otherwise a 400 naming the codes accepted."""
    stated = (code or "").strip()
    if stated not in codes:
        raise BadRequest(
            f"purpose_of_use is one of {', '.join(codes)} (HL7 PurposeOfUse, {SYSTEM})"
        )
    return stated


def described(codes: Mapping[str, str]) -> str:
    """The codes and what each means, for an API document."""
    return "; ".join(f"{code} {text}" for code, text in codes.items())
