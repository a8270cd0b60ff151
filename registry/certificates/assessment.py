"""What a submission learns from the certificates feature: one verdict per destination."""

from __future__ import annotations

from dataclasses import dataclass

from registry.certificates.models import Certificate
from registry.certificates.rulesets import Reason


@dataclass(frozen=True)
class Assessment:
    """One destination's verdict on an examination version, and its certificate when met."""

    destination: str
    met: bool
    reasons: tuple[Reason, ...]  # for the examining clinic (and the destination's authority)
    certificate: Certificate | None
    ruleset_version: int | None = None
