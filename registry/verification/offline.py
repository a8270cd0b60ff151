"""Verification with no network: a card judged against a signed trust list.

The trust list's signature is checked against the registry's document keys, pinned by the
verifier (a copy of the registry's /.well-known/registry-keys.json, whose keys of purpose
``document`` are taken, or the registry's own key folder). Without a
pinned key the list is checked against the key it carries itself, which proves it is intact but
not who made it; the answer then says so.

Offline there is no examination date (a card does not carry it), so a clinic's accreditation
"at the examination" is judged on the card's first day of validity, which falls on or shortly
after the examination. There is no holder photo or document hint either: those never leave the
registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from registry.accreditation.models import Clinic
from registry.accreditation.status import accreditation_at
from registry.certificates import shc
from registry.crypto import jws
from registry.crypto.keys import KeyFormatError, PublicKey, b64url_decode, load_public_jwk
from registry.db import utcnow
from registry.jsonlimits import loads_strict
from registry.verification.clinics import detached_clinic, standing_on
from registry.verification.trustlist import FORMAT_VERSION, TRUST_LIST_TYPE
from registry.verification.verdict import (
    ISSUER_REVOKED,
    MALFORMED,
    REGISTRY_REVOKED,
    REPLACED,
    REVOKED,
    SUPERSEDED,
    UNREADABLE,
    Accreditation,
    ClinicFacts,
    HolderFacts,
    IssuerKeys,
    Presented,
    Revocation,
    Unreadable,
    Verification,
    check_card,
    name_of,
    token_from,
)

MAX_TRUST_LIST_BYTES = 64 * 1024 * 1024
MAX_CARD_FILE_BYTES = shc.MAX_HEALTH_CARD_FILE


class TrustListError(ValueError):
    """A trust list that cannot be used: unreadable, of another format, or badly signed."""


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _clinic(entry: Mapping[str, Any]) -> Clinic:
    until = entry.get("accredited_until")
    return detached_clinic(
        clinic_id=entry["id"],
        name=entry["name"],
        country=entry["country"],
        status=entry["status"],
        accredited_from=date.fromisoformat(entry["accredited_from"]),
        accredited_until=date.fromisoformat(until) if until else None,
        history=[
            (
                number,
                event["status"],
                datetime.fromisoformat(event["effective_at"]),
                datetime.fromisoformat(event["recorded_at"]),
            )
            for number, event in enumerate(entry["history"], start=1)
        ],
    )


def _rid_index(crl: Mapping[str, Any]) -> dict[str, tuple[int | None, ...]]:
    """A revocation list by rid, so a lookup costs the same however long the list grows."""
    if crl.get("method") != "rid" or not isinstance(crl.get("rids"), list):
        raise TrustListError("a revocation list of the trust list is not of method rid")
    index: dict[str, list[int | None]] = {}
    for entry in crl["rids"]:
        rid, _, before = str(entry).partition(".")
        if before and not before.isdigit():
            raise TrustListError(f"revocation list entry {entry!r} has a malformed time")
        index.setdefault(rid, []).append(int(before) if before else None)
    return {rid: tuple(times) for rid, times in index.items()}


def _public_keys(jwks: Any, what: str) -> dict[str, PublicKey]:
    """EC P-256 keys by kid from a JWK Set; a key that names another purpose is left out."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise TrustListError(f'the {what} has no "keys" array')
    found = {}
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("purpose", "document") != "document":
            continue
        try:
            found[str(jwk["kid"])] = load_public_jwk(jwk)
        except (KeyError, TypeError, KeyFormatError):
            continue
    return found


def document_keys_from(key_set: Any) -> dict[str, PublicKey]:
    """The registry's document keys, pinned from its /.well-known/registry-keys.json.

    Only keys whose ``purpose`` is ``document`` are taken: a trust list signed with any other
    registry key (a token or certificate key) is refused.
    """
    keys = key_set.get("keys") if isinstance(key_set, dict) else None
    if not isinstance(keys, list):
        raise TrustListError('the registry key set has no "keys" array')
    named = [k for k in keys if isinstance(k, dict) and k.get("purpose") == "document"]
    pinned = _public_keys({"keys": named}, "registry key set")
    if not pinned:
        raise TrustListError(
            "the registry key set has no key of purpose document: give a copy of the "
            "registry's /.well-known/registry-keys.json (its /.well-known/jwks.json holds the "
            "certificate keys only)"
        )
    return pinned


class TrustList:
    """A verified trust list, indexed for judging cards (the offline Trust)."""

    def __init__(self, document: Mapping[str, Any], *, pinned: bool) -> None:
        if document.get("type") != TRUST_LIST_TYPE or document.get("version") != FORMAT_VERSION:
            raise TrustListError(
                f"not a trust list of format {TRUST_LIST_TYPE} version {FORMAT_VERSION}"
            )
        try:
            self.registry: str = document["registry"]
            self.issued_at = datetime.fromisoformat(document["issued_at"])
            self.revocations_as_of = datetime.fromisoformat(document["revocations_as_of"])
            self._issuers = {
                entry["iss"]: IssuerKeys(
                    iss=entry["iss"],
                    kind=entry["kind"],
                    status=entry["status"],
                    keys={str(jwk["kid"]): load_public_jwk(jwk) for jwk in entry["keys"]},
                    name=entry.get("name"),
                )
                for entry in document["issuers"]
            }
            self._clinics = {entry["id"]: _clinic(entry) for entry in document["clinics"]}
            self._revocations = {
                (entry["iss"], entry["kid"]): (
                    _rid_index(entry["crl"]),
                    frozenset(entry.get("superseded", ())),
                    _moment(entry.get("as_of")),
                )
                for entry in document["revocations"]
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise TrustListError(f"the trust list is incomplete: {exc!r}") from exc
        self.pinned = pinned
        self._on_day: dict[tuple[str, date], str] = {}
        self._today: dict[tuple[str, date], str] = {}

    @classmethod
    def load(cls, raw: bytes, *, registry_keys: Mapping[str, PublicKey] | None) -> TrustList:
        """Read a trust list file (the API's JSON, or the bare JWS) and check its signature."""
        if len(raw) > MAX_TRUST_LIST_BYTES:
            raise TrustListError("the trust list file is too large")
        text = raw.decode("utf-8", errors="replace").strip()
        token = text
        if text.startswith("{"):
            try:
                token = loads_strict(text)["jws"]
            except (ValueError, KeyError, TypeError) as exc:
                raise TrustListError('a trust list file holds {"jws": …}') from exc
        try:
            kid = str(jws.read_header(token).get("kid"))
            pinned = registry_keys is not None
            if registry_keys is None:
                carried = loads_strict(b64url_decode(token.split(".")[1]))
                registry_keys = _public_keys({"keys": carried["signing_keys"]}, "trust list")
        except (jws.JWSError, ValueError, KeyError, TypeError) as exc:
            raise TrustListError(f"the trust list is not a signed document: {exc}") from exc
        key = registry_keys.get(kid)
        if key is None:
            raise TrustListError(f"the trust list is signed with key {kid}, not a registry key")
        try:
            payload = loads_strict(jws.verify(token, key))
        except ValueError as exc:  # JWSError, or a payload that is not strict JSON
            raise TrustListError(f"the trust list's signature does not verify: {exc}") from exc
        if not isinstance(payload, dict):
            raise TrustListError("the trust list is not a JSON object")
        return cls(payload, pinned=pinned)

    @classmethod
    def from_file(cls, path: Path, *, registry_keys: Mapping[str, PublicKey] | None) -> TrustList:
        """A trust list read from a file."""
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise TrustListError(f"cannot read the trust list {path}: {exc}") from exc
        return cls.load(raw, registry_keys=registry_keys)

    # -- the Trust protocol ------------------------------------------------------------------
    def issuer(self, iss: str) -> IssuerKeys | None:
        """A trusted issuer with its keys."""
        return self._issuers.get(iss)

    def revocation(
        self,
        *,
        issuer: IssuerKeys,
        kid: str,
        rid: str | None,
        nbf: float,
        claims: shc.CertificateClaims | None,
    ) -> Revocation:
        """Whether the list of the card's key revokes it, and as of when the list was read."""
        found = self._revocations.get((issuer.iss, kid))
        as_of = self.revocations_as_of if issuer.kind == "registry" else None
        if found is None:
            return Revocation(None, as_of)
        revoked_before, superseded, listed_as_of = found
        as_of = listed_as_of or as_of
        # the rule of SMART Health Cards revocation lists: a listed rid revokes every card
        # with it, a listed "rid.time" the cards signed (nbf) before that time
        times = revoked_before.get(rid) if rid is not None else None
        if not times or not any(t is None or nbf < t for t in times):
            return Revocation(None, as_of)
        if rid in superseded:
            return Revocation(SUPERSEDED, as_of, REPLACED)
        if issuer.kind == "registry":
            return Revocation(REVOKED, as_of, REGISTRY_REVOKED)
        return Revocation(REVOKED, as_of, ISSUER_REVOKED)

    def clinic(self, *, claims: shc.CertificateClaims, now: datetime) -> ClinicFacts | None:
        """The clinic as the trust list knows it (accreditation judged on the first valid day)."""
        clinic = self._clinics.get(claims.clinic_id)
        if clinic is None:
            return ClinicFacts(
                id=claims.clinic_id,
                name=claims.clinic_name,
                country=None,
                accreditation=Accreditation(at_examination="unknown", now="unknown"),
            )
        return ClinicFacts(
            id=clinic.id,
            name=clinic.name,
            country=clinic.country,
            accreditation=Accreditation(
                at_examination=self._standing_on(clinic, claims.valid_from),
                now=self._standing_now(clinic, now),
            ),
        )

    def _standing_on(self, clinic: Clinic, day: date) -> str:
        key = (clinic.id, day)
        if key not in self._on_day:
            self._on_day[key] = standing_on(clinic, day)
        return self._on_day[key]

    def _standing_now(self, clinic: Clinic, now: datetime) -> str:
        settled = max((e.effective_at for e in clinic.history), default=None)
        if settled is None or now < settled:
            return accreditation_at(clinic, now)
        # Once every status change in the list has taken effect, only the accreditation
        # window's end, a matter of days, can change the answer.
        key = (clinic.id, now.date())
        if key not in self._today:
            self._today[key] = accreditation_at(clinic, now)
        return self._today[key]

    def holder(self, *, claims: shc.CertificateClaims, identity: bool) -> HolderFacts:
        """The holder as the card names them."""
        return HolderFacts(name=name_of(claims), birth_date=claims.birth_date)


@dataclass(frozen=True)
class OfflineVerification:
    """An offline answer and how old the knowledge behind it is."""

    verification: Verification
    trust_list_issued_at: datetime
    revocation_data_as_of: datetime | None
    trust_list_pinned: bool

    @property
    def revocation_age_seconds(self) -> int | None:
        """Seconds between the revocation data being read and the check."""
        if self.revocation_data_as_of is None:
            return None
        return int((self.verification.checked_at - self.revocation_data_as_of).total_seconds())


def verify_offline(
    presented: Presented, *, trust_list: TrustList, now: datetime | None = None
) -> OfflineVerification:
    """Judge a QR text or card against the trust list alone."""
    now = now or utcnow()
    try:
        verification = check_card(
            token_from(presented),
            trust=trust_list,
            now=now,
            for_destination=presented.for_destination,
        )
    except Unreadable as exc:
        verification = Verification(
            MALFORMED,
            now,
            reason=str(exc),
            reason_code=UNREADABLE,
            for_destination=presented.for_destination,
        )
    return OfflineVerification(
        verification=verification,
        trust_list_issued_at=trust_list.issued_at,
        revocation_data_as_of=verification.revocation_checked_at or trust_list.revocations_as_of,
        trust_list_pinned=trust_list.pinned,
    )


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a JWS is longer than a file name may be
        return False


def presented_cards(argument: str) -> list[Presented]:
    """What a command-line argument holds: QR text, a JWS, or a file with either or a card file.

    A ``.smart-health-card`` file may hold several cards; each is judged.
    """
    text = argument.strip()
    if text[:5].lower() == shc.QR_PREFIX:
        return [Presented(qr=text)]
    if _is_file(text):
        raw = Path(text).read_bytes()[: MAX_CARD_FILE_BYTES + 1]
        content = raw.decode("utf-8", errors="replace").strip()
        if content.startswith("{"):
            try:
                return [Presented(jws=token) for token in shc.read_health_card_file(raw)]
            except shc.CardFormatError:
                return [Presented(jws=content)]
        text = content
        if text[:5].lower() == shc.QR_PREFIX:
            return [Presented(qr=text)]
    return [Presented(jws=text)]
