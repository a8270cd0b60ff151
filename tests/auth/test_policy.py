"""The policy table, checked directly: every action against every role, scope and narrowing.

The HTTP matrix (tests/test_permission_matrix.py) proves each endpoint reaches this check;
here each rule is proved without a request.
"""

from __future__ import annotations

import itertools

import pytest

from registry.auth.permissions import POLICY, authorize
from registry.auth.principal import ANONYMOUS, ROLE_SCOPES, Principal
from registry.errors import Forbidden, Unauthorized

# the allowed roles of every action, written out again so a change to the table is deliberate
EXPECTED_ROLES = {
    "clinic.manage": {"accreditor", "admin"},
    "client.manage": {"admin"},
    "ruleset.manage": {"admin"},
    "issuer.manage": {"admin"},
    "audit.read": {"accreditor", "admin"},
    "examination.submit": {"clinic"},
    "examination.read": {"clinic"},
    "certificate.revoke": {"clinic", "accreditor", "admin"},
    "certificate.read": {"clinic", "admin"},
    "certificate.download": {"clinic"},
    "person.lookup": {"clinic", "authority"},
    "referral.update": {"clinic"},
    "referral.read": {"clinic"},
    "authority.read": {"authority"},
    "surveillance.read": {"ministry", "admin"},
    "fraud.read": {"accreditor", "admin"},
}


def _caller(role: str, *, scopes: frozenset[str] | None = None) -> Principal:
    return Principal(
        client_id=f"{role}-client",
        role=role,
        scopes=ROLE_SCOPES[role] if scopes is None else scopes,
        clinic_id="TJ-DUS-0007" if role == "clinic" else None,
        country="TJ",
    )


def _allowed(principal: Principal, action: str, **scope: object) -> bool:
    try:
        authorize(principal, action, **scope)  # type: ignore[arg-type]
    except Forbidden:
        return False
    return True


def test_the_table_names_every_action_and_no_other() -> None:
    assert set(POLICY) == set(EXPECTED_ROLES)


@pytest.mark.parametrize(
    ("action", "role"), list(itertools.product(sorted(EXPECTED_ROLES), sorted(ROLE_SCOPES)))
)
def test_each_role_may_do_exactly_the_actions_of_its_rules(action: str, role: str) -> None:
    # the caller's own clinic and country: only the role decides
    scope = {"clinic_id": "TJ-DUS-0007", "countries": ("TJ",)}
    assert _allowed(_caller(role), action, **scope) is (role in EXPECTED_ROLES[action])


@pytest.mark.parametrize("action", sorted(EXPECTED_ROLES))
def test_an_anonymous_caller_is_unauthorised_for_every_action(action: str) -> None:
    with pytest.raises(Unauthorized, match=action):
        authorize(ANONYMOUS, action)


@pytest.mark.parametrize("action", sorted(EXPECTED_ROLES))
def test_a_token_without_the_rules_scope_is_refused_even_for_an_allowed_role(action: str) -> None:
    rule = POLICY[action]
    for role in sorted(rule.roles - {"admin"}):  # the operator is not narrowed by scope
        narrowed = _caller(role, scopes=ROLE_SCOPES[role] - {rule.scope})
        with pytest.raises(Forbidden, match=rule.scope):
            authorize(narrowed, action, clinic_id="TJ-DUS-0007", countries=("TJ",))


@pytest.mark.parametrize(
    "action", sorted(a for a, rule in POLICY.items() if rule.narrowed_by == "clinic")
)
def test_a_clinic_acts_only_for_its_own_clinic(action: str) -> None:
    clinic = _caller("clinic")
    assert _allowed(clinic, action, clinic_id="TJ-DUS-0007")
    with pytest.raises(Forbidden, match="may not act for clinic KG-BIS-0001"):
        authorize(clinic, action, clinic_id="KG-BIS-0001")


@pytest.mark.parametrize(
    "action", sorted(a for a, rule in POLICY.items() if rule.narrowed_by == "country")
)
def test_a_country_role_acts_only_for_its_own_country(action: str) -> None:
    for role in sorted(POLICY[action].roles - {"admin"}):
        caller = _caller(role)
        assert _allowed(caller, action, countries=("TJ",))
        assert _allowed(caller, action, countries=("KZ", "TJ"))  # origin or destination
        with pytest.raises(Forbidden, match=f"of TJ may not {action} for KZ"):
            authorize(caller, action, countries=("KZ",))


def test_the_operator_acts_across_countries_and_clinics_where_the_table_lets_it() -> None:
    admin = _caller("admin")
    for action, rule in POLICY.items():
        allowed = _allowed(admin, action, clinic_id="KG-BIS-0001", countries=("KZ",))
        assert allowed is ("admin" in rule.roles), action


def test_an_accreditor_revokes_only_its_own_countrys_certificates() -> None:
    accreditor = _caller("accreditor")
    assert _allowed(accreditor, "certificate.revoke", clinic_id="TJ-DUS-0007", countries=("TJ",))
    with pytest.raises(Forbidden, match="acts only for its own clinics"):
        authorize(accreditor, "certificate.revoke", clinic_id="KG-BIS-0001", countries=("KG",))
