"""The one permission check every service calls: role, scope, and the caller's clinic or country."""

from __future__ import annotations

from dataclasses import dataclass

from registry.auth.principal import Principal
from registry.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Rule:
    """Who may perform an action and how it is scoped."""

    roles: frozenset[str]
    scope: str
    # "clinic": the caller's clinic must be the object's clinic; "country": the caller's country
    # must be the object's country (or one of them); None: no narrowing beyond the role.
    narrowed_by: str | None = None


def _rule(roles: str, scope: str, narrowed_by: str | None = None) -> Rule:
    return Rule(frozenset(roles.split()), scope, narrowed_by)


POLICY: dict[str, Rule] = {
    "clinic.manage": _rule("accreditor admin", "clinics.write", "country"),
    "client.manage": _rule("admin", "clients.write"),
    "ruleset.manage": _rule("admin", "rulesets.write"),
    "issuer.manage": _rule("admin", "issuers.write"),
    "audit.read": _rule("accreditor admin", "audit.read", "country"),
    "examination.submit": _rule("clinic", "examinations.write", "clinic"),
    "examination.read": _rule("clinic", "examinations.read", "clinic"),
    "certificate.revoke": _rule("clinic accreditor admin", "certificates.revoke", "clinic"),
    "certificate.read": _rule("clinic admin", "examinations.read", "clinic"),
    "certificate.download": _rule("clinic", "examinations.read", "clinic"),
    "person.lookup": _rule("clinic authority", "persons.lookup"),
    "referral.update": _rule("clinic", "referrals.write", "clinic"),
    "referral.read": _rule("clinic", "examinations.read", "clinic"),
    "authority.read": _rule("authority", "authority.read", "country"),
    "surveillance.read": _rule("ministry admin", "surveillance.read", "country"),
    "fraud.read": _rule("accreditor admin", "fraud.read", "country"),
}


def authorize(
    principal: Principal,
    action: str,
    *,
    clinic_id: str | None = None,
    countries: tuple[str | None, ...] = (),
) -> None:
    """Raise Unauthorized (no caller) or Forbidden (wrong caller) unless ``action`` is allowed.

    ``clinic_id`` is the clinic that owns the object; ``countries`` are the jurisdictions the
    object belongs to (a clinic's country; an examination's origin and destination).
    """
    rule = POLICY[action]
    if not principal.authenticated:
        raise Unauthorized(f"{action} needs a bearer access token")
    if principal.role == "admin" and "admin" in rule.roles:
        return  # the operator acts across countries and clinics where the policy lets it act
    if principal.role not in rule.roles:
        raise Forbidden(f"the {principal.role} role may not {action}", action=action)
    if rule.scope not in principal.scopes:
        raise Forbidden(f"the access token lacks the scope {rule.scope!r}", action=action)
    if principal.role == "clinic" and rule.narrowed_by == "clinic":
        if clinic_id is not None and principal.clinic_id != clinic_id:
            raise Forbidden(f"clinic {principal.clinic_id} may not act for clinic {clinic_id}")
        return
    if principal.role == "accreditor" and action == "certificate.revoke":
        if countries and principal.country not in countries:
            raise Forbidden(f"an accreditor of {principal.country} acts only for its own clinics")
        return
    if rule.narrowed_by == "country" and countries and principal.country not in countries:
        wanted = ", ".join(c for c in countries if c)
        raise Forbidden(
            f"a {principal.role} of {principal.country} may not {action} for {wanted}",
            action=action,
        )
