"""Who is calling: a registered client with a role, scopes and its clinic or country."""

from __future__ import annotations

from dataclasses import dataclass, field

# The scopes each role may hold; a token carries the requested subset.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "clinic": frozenset(
        {
            "examinations.write",
            "examinations.read",
            "certificates.revoke",
            "persons.lookup",
            "referrals.write",
        }
    ),
    "employer": frozenset({"verify"}),
    "authority": frozenset({"verify", "authority.read", "persons.lookup"}),
    "ministry": frozenset({"surveillance.read"}),
    "accreditor": frozenset({"clinics.write", "certificates.revoke", "fraud.read", "audit.read"}),
    "admin": frozenset(
        {
            "admin",
            "clinics.write",
            "clients.write",
            "rulesets.write",
            "issuers.write",
            "certificates.revoke",
            "audit.read",
        }
    ),
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, or the anonymous one."""

    client_id: str | None
    role: str | None
    name: str = "anonymous"
    scopes: frozenset[str] = field(default_factory=frozenset)
    clinic_id: str | None = None
    country: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.client_id is not None

    # the audit Actor protocol
    @property
    def actor_id(self) -> str:
        return self.client_id or "anonymous"

    @property
    def jurisdiction(self) -> str | None:
        return self.country


ANONYMOUS = Principal(client_id=None, role=None)
