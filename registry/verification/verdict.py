"""Judging one SMART Health Card: format, issuer, signature, revocation, clinic, validity.

One function, ``check_card``, judges a card against a ``Trust``: the database when the registry
answers online, a signed trust list when a verifier works offline. Both therefore give the same
answer for the same card and the same knowledge.

Order of judgement, first failure wins: ``malformed`` (not a card we can read),
``invalid_signature`` for an algorithm other than ES256, ``untrusted_issuer``, then
``invalid_signature`` for a key the issuer does not have or a signature that does not verify;
for a genuine card ``not_found`` (signed by the registry, no such certificate on record),
``superseded`` / ``revoked``, ``issuer_suspended`` (the issuer, or the examining clinic now, or a
suspension that covers the examination date), ``not_yet_valid``, ``expired``; otherwise ``valid``,
or ``valid_for_other_destination`` when the verifier said which country it checks for and the
certificate is for another one (the answer still says what it is valid for).

Every answer but a plain ``valid`` carries a ``reason_code`` (``REASON_CODES``): the reason in
a word the pages translate, beside the English ``reason`` for people reading the API.

A card of another kind than our examination certificate can be ``valid`` (genuine, trusted,
current) but reports ``card_type: other`` and no certificate, so it is never taken for one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from registry.certificates import shc
from registry.crypto import jws
from registry.crypto.keys import PublicKey, b64url_decode
from registry.jsonlimits import loads_strict
from registry.transparency.reasons import REVOCATION_CODES

VALID = "valid"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
REVOKED = "revoked"
SUPERSEDED = "superseded"
INVALID_SIGNATURE = "invalid_signature"
UNTRUSTED_ISSUER = "untrusted_issuer"
ISSUER_SUSPENDED = "issuer_suspended"
NOT_FOUND = "not_found"
MALFORMED = "malformed"
VALID_FOR_OTHER_DESTINATION = "valid_for_other_destination"
RESULTS = (
    VALID,
    VALID_FOR_OTHER_DESTINATION,
    EXPIRED,
    NOT_YET_VALID,
    REVOKED,
    SUPERSEDED,
    INVALID_SIGNATURE,
    UNTRUSTED_ISSUER,
    ISSUER_SUSPENDED,
    NOT_FOUND,
    MALFORMED,
)
# Why an answer is not a plain "valid", in one word each (the pages translate them).
UNREADABLE = "unreadable"  # not a card or QR text that can be read
REQUEST = "request"  # the request itself: nothing, or more than one thing, presented
NUMBER_FORMAT = "number-format"  # a typed certificate number of the wrong shape
NUMBER_CHECK = "number-check"  # a typed number whose check character does not match
BIRTH_DATE = "birth-date"  # a typed birth date that is not a date
SIGNATURE = "signature"
ISSUER_UNKNOWN = "issuer-unknown"
ISSUER_STOPPED = "issuer-suspended"
CLINIC_STOPPED = "clinic-suspended"
CLINIC_STOPPED_THEN = "clinic-suspended-then"
NOT_ON_RECORD = "not-found"
TOO_EARLY = "not-yet-valid"
TOO_LATE = "expired"
OTHER_DESTINATION = "other-destination"
OTHER_CARD_TYPE = "other-card-type"
CARD_REPLACED = "card-replaced"  # an older card of a certificate that has a newer one
ISSUER_LISTED = "issuer-list"  # on another issuer's revocation list
REASON_CODES = (
    UNREADABLE,
    REQUEST,
    NUMBER_FORMAT,
    NUMBER_CHECK,
    BIRTH_DATE,
    SIGNATURE,
    ISSUER_UNKNOWN,
    ISSUER_STOPPED,
    CLINIC_STOPPED,
    CLINIC_STOPPED_THEN,
    NOT_ON_RECORD,
    TOO_EARLY,
    TOO_LATE,
    OTHER_DESTINATION,
    OTHER_CARD_TYPE,
    CARD_REPLACED,
    ISSUER_LISTED,
    *REVOCATION_CODES,
)
_DESTINATION_CODE = re.compile(r"[A-Z]{2}")
EXAMINATION_CERTIFICATE = "examination-certificate"
OTHER_CARD = "other"

# A QR holds at most 1195 characters; a card in a file may be longer, never this long.
MAX_JWS_LENGTH = 64 * 1024
# Registry servers and verifiers' clocks differ a little; a card is not "not yet valid" for that.
CLOCK_SKEW = timedelta(minutes=5)
# Why a card is revoked, in words for a verifier: never a clinic's own reason, which may say
# more than an employer may learn.
REGISTRY_REVOKED = "revoked by the issuing clinic or the registry"
REPLACED = "replaced by a newer certificate"
ISSUER_REVOKED = "listed on the issuer's revocation list"
# Statuses of a clinic that stop its certificates being accepted.
SUSPENDED_STATUSES = ("suspended", "withdrawn")
_PART = re.compile(r"[A-Za-z0-9_\-]+")
_ES256_SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class CertificateFacts:
    """What an examination certificate card states about itself (never a test or result)."""

    id: str
    purpose: str
    destination: str
    issued: datetime
    valid_from: date
    valid_until: date


@dataclass(frozen=True)
class HolderFacts:
    """Who the certificate is for, to compare with the person presenting it."""

    name: str
    birth_date: str
    document_hint: str | None = None
    photo_url: str | None = None


@dataclass(frozen=True)
class Accreditation:
    """A clinic's accreditation status on the examination date and now."""

    at_examination: str | None
    now: str | None

    @property
    def suspended(self) -> bool:
        """Whether the clinic's certificates are not to be accepted."""
        then = self.at_examination is not None and self.at_examination != "active"
        return self.now in SUSPENDED_STATUSES or then


@dataclass(frozen=True)
class ClinicFacts:
    """The examining clinic and its accreditation."""

    id: str
    name: str | None
    country: str | None
    accreditation: Accreditation


@dataclass
class Verification:
    """The answer about one presented card or certificate number."""

    result: str
    checked_at: datetime
    reason: str | None = None
    reason_code: str | None = None
    for_destination: str | None = None
    revoked_at: datetime | None = None
    card_type: str | None = None
    certificate: CertificateFacts | None = None
    holder: HolderFacts | None = None
    clinic: ClinicFacts | None = None
    issuer: str | None = None
    kid: str | None = None
    revocation_checked_at: datetime | None = None
    authority_view: str | None = None
    log_leaf: str | None = None
    receipt: str | None = None
    # Known to the service, never published: which of our certificates was checked.
    certificate_id: str | None = field(default=None, repr=False)
    examination_id: str | None = field(default=None, repr=False)
    # The answer as published (the schema's dump with the receipt), made once.
    published: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Presented:
    """What a verifier presents: QR text, a card's JWS, or a certificate number and birth date."""

    qr: str | None = None
    jws: str | None = None
    certificate_id: str | None = None
    birth_date: str | None = None
    for_destination: str | None = None  # the country the verifier checks for, if it said

    @property
    def form(self) -> str:
        """Which of the three forms this is (for the audit trail)."""
        if self.qr is not None:
            return "qr"
        if self.jws is not None:
            return "jws"
        return "certificate_id"


@dataclass(frozen=True)
class IssuerKeys:
    """An issuer the verifier trusts: its signing keys by kid and its standing."""

    iss: str
    kind: str  # registry | external
    status: str  # active | suspended
    keys: Mapping[str, PublicKey]
    name: str | None = None
    # kids the issuer has withdrawn (compromised), with what to tell the verifier
    withdrawn: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Revocation:
    """Whether a card is revoked, and how fresh that knowledge is."""

    status: str | None  # None (not revoked), revoked, superseded, or unknown (no such certificate)
    checked_at: datetime | None
    reason: str | None = None
    code: str | None = None  # one of REASON_CODES, for revoked and superseded
    since: datetime | None = None  # when the certificate was revoked, where that is known


class Trust(Protocol):
    """What a verifier knows: issuers and keys, revocations, clinics and holders."""

    def issuer(self, iss: str) -> IssuerKeys | None: ...

    def revocation(
        self,
        *,
        issuer: IssuerKeys,
        kid: str,
        rid: str | None,
        nbf: float,
        claims: shc.CertificateClaims | None,
    ) -> Revocation: ...

    def clinic(self, *, claims: shc.CertificateClaims, now: datetime) -> ClinicFacts | None: ...

    def holder(self, *, claims: shc.CertificateClaims, identity: bool) -> HolderFacts: ...


class Unreadable(ValueError):
    """Presented input that holds no card: answered ``malformed`` with this reason."""


def token_from(presented: Presented) -> str:
    """The compact JWS a QR text or JWS input holds; raises Unreadable."""
    if presented.qr is not None:
        try:
            return shc.jws_from_qr(presented.qr)
        except shc.CardFormatError as exc:
            raise Unreadable(f"the QR text is not a SMART Health Card: {exc}") from exc
    if presented.jws is None:
        raise Unreadable("send qr, jws, or certificate_id with birth_date")
    return presented.jws.strip()


def name_of(claims: shc.CertificateClaims) -> str:
    """The holder's name as the card writes it: family name, then given names."""
    return " ".join([claims.family_name, *claims.given_names])


def _certificate_facts(claims: shc.CertificateClaims) -> CertificateFacts:
    return CertificateFacts(
        id=claims.certificate_id,
        purpose=claims.purpose,
        destination=claims.destination,
        issued=claims.issued_at,
        valid_from=claims.valid_from,
        valid_until=claims.valid_until,
    )


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3 or not all(_PART.fullmatch(part) for part in parts):
        raise Unreadable("a card is a compact JWS: three base64url parts joined by dots")
    try:
        header = loads_strict(b64url_decode(parts[0]))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Unreadable("the JWS header is not base64url-encoded JSON") from exc
    if not isinstance(header, dict):
        raise Unreadable("the JWS header is not a JSON object")
    return header


def _unreadable(token: str, reason: str, now: datetime) -> Verification:
    """A card that cannot be read: under another algorithm than ES256 its signature is bad."""
    try:
        header = _header(token)
    except Unreadable as exc:
        return Verification(MALFORMED, now, reason=str(exc), reason_code=UNREADABLE)
    algorithm = header.get("alg")
    if algorithm != "ES256":
        return Verification(
            INVALID_SIGNATURE,
            now,
            reason=f"algorithm {algorithm!r} is not accepted: SMART Health Cards are signed ES256",
            reason_code=SIGNATURE,
        )
    return Verification(MALFORMED, now, reason=reason, reason_code=UNREADABLE)


def destination_code(text: str | None) -> str | None:
    """The country a verifier checks for, as an ISO 3166-1 alpha-2 code; ValueError otherwise."""
    if text is None or not text.strip():
        return None
    code = text.strip().upper()
    if not _DESTINATION_CODE.fullmatch(code):
        raise ValueError(
            f"for_destination is an ISO 3166-1 alpha-2 country code such as RU, not {text!r}"
        )
    return code


def check_card(
    token: str, *, trust: Trust, now: datetime, for_destination: str | None = None
) -> Verification:
    """Judge one card (compact JWS) against what ``trust`` knows, as of ``now``.

    Given ``for_destination`` (a verifier checking for one country), a valid certificate of
    another destination is answered ``valid_for_other_destination``.
    """
    if not isinstance(token, str) or not token:
        return Verification(MALFORMED, now, reason="no card was presented", reason_code=REQUEST)
    if len(token) > MAX_JWS_LENGTH:
        return Verification(
            MALFORMED,
            now,
            reason=f"a card is at most {MAX_JWS_LENGTH} characters; this is {len(token)}",
            reason_code=UNREADABLE,
        )
    try:
        header, payload = shc.decode_card(token)
    except shc.CardFormatError as exc:
        return _unreadable(token, str(exc), now)
    kid = str(header["kid"])
    iss = str(payload["iss"])
    issuer = trust.issuer(iss)
    if issuer is None:
        return Verification(
            UNTRUSTED_ISSUER,
            now,
            reason=f"{iss} is not an issuer this registry trusts",
            reason_code=ISSUER_UNKNOWN,
            issuer=iss,
            kid=kid,
        )
    key = issuer.keys.get(kid)
    if key is None:
        return Verification(
            INVALID_SIGNATURE,
            now,
            reason=issuer.withdrawn.get(kid) or f"{iss} has no key {kid}",
            reason_code=SIGNATURE,
            issuer=iss,
            kid=kid,
        )
    try:
        signature = b64url_decode(token.rsplit(".", 1)[1])
    except ValueError:
        signature = b""
    if len(signature) != _ES256_SIGNATURE_BYTES:
        return Verification(
            INVALID_SIGNATURE,
            now,
            reason=f"the signature is {len(signature)} bytes; an ES256 JWS signature is the "
            "64-byte R‖S pair (DER-encoded signatures are not accepted)",
            reason_code=SIGNATURE,
            issuer=iss,
            kid=kid,
        )
    try:
        # the card was taken apart and its header read above: only the signature is left
        jws.verify_signature(header, token.rpartition(".")[0], signature, key)
    except jws.JWSError:
        return Verification(
            INVALID_SIGNATURE,
            now,
            reason=f"the signature does not verify with key {kid} of {iss}: the card was "
            "altered or forged",
            reason_code=SIGNATURE,
            issuer=iss,
            kid=kid,
        )
    return _judge_genuine(
        payload, issuer=issuer, kid=kid, trust=trust, now=now, for_destination=for_destination
    )


def _judge_genuine(
    payload: dict[str, Any],
    *,
    issuer: IssuerKeys,
    kid: str,
    trust: Trust,
    now: datetime,
    for_destination: str | None,
) -> Verification:
    """The verdict on a card whose signature verified with a trusted issuer's key."""
    card_type = shc.card_type(payload)
    claims = None
    if card_type == EXAMINATION_CERTIFICATE:
        try:
            claims = shc.read_certificate(payload)
        except shc.CardFormatError as exc:
            return Verification(
                MALFORMED,
                now,
                reason=str(exc),
                reason_code=UNREADABLE,
                issuer=issuer.iss,
                kid=kid,
                card_type=card_type,
            )
    nbf = payload["nbf"]
    revocation = trust.revocation(
        issuer=issuer, kid=kid, rid=payload["vc"].get("rid"), nbf=nbf, claims=claims
    )
    verification = Verification(
        VALID,
        now,
        card_type=card_type,
        issuer=issuer.iss,
        kid=kid,
        revocation_checked_at=revocation.checked_at,
        for_destination=for_destination,
    )
    if claims is not None:
        verification.certificate = _certificate_facts(claims)
        if issuer.kind == "registry":
            verification.certificate_id = claims.certificate_id
            verification.clinic = trust.clinic(claims=claims, now=now)
    result, reason, code = _result(payload, claims, issuer, revocation, verification.clinic, now)
    if result == VALID and claims is not None and for_destination not in (None, claims.destination):
        result, code = VALID_FOR_OTHER_DESTINATION, OTHER_DESTINATION
        reason = (
            f"valid for {claims.destination} ({claims.purpose}), not for {for_destination}: "
            "it does not show that the requirements of that country are met"
        )
    verification.result, verification.reason, verification.reason_code = result, reason, code
    if result in (REVOKED, SUPERSEDED):
        verification.revoked_at = revocation.since
    if result == NOT_FOUND:
        verification.certificate = verification.clinic = None
        verification.certificate_id = None
    elif claims is not None:
        verification.holder = trust.holder(claims=claims, identity=result == VALID)
    return verification


def _result(
    payload: dict[str, Any],
    claims: shc.CertificateClaims | None,
    issuer: IssuerKeys,
    revocation: Revocation,
    clinic: ClinicFacts | None,
    now: datetime,
) -> tuple[str, str | None, str | None]:
    if revocation.status == "unknown":
        return NOT_FOUND, revocation.reason or "no such certificate is on record", NOT_ON_RECORD
    if revocation.status == SUPERSEDED:
        return SUPERSEDED, revocation.reason or REPLACED, revocation.code or "superseded"
    if revocation.status == REVOKED:
        code = revocation.code or (
            "revoked-by-issuer" if issuer.kind == "registry" else ISSUER_LISTED
        )
        return REVOKED, revocation.reason or ISSUER_REVOKED, code
    if issuer.status != "active":
        return ISSUER_SUSPENDED, f"the issuer {issuer.iss} is {issuer.status}", ISSUER_STOPPED
    if clinic is not None and clinic.accreditation.suspended:
        standing = clinic.accreditation
        if standing.now in SUSPENDED_STATUSES:
            return (
                ISSUER_SUSPENDED,
                f"the examining clinic {clinic.id} is {standing.now}",
                CLINIC_STOPPED,
            )
        return (
            ISSUER_SUSPENDED,
            f"the examining clinic {clinic.id} was {standing.at_examination} on the "
            "examination date",
            CLINIC_STOPPED_THEN,
        )
    today = now.date()
    if payload["nbf"] > (now + CLOCK_SKEW).timestamp() or (
        claims is not None and claims.valid_from > today
    ):
        start = (
            claims.valid_from.isoformat()
            if claims is not None
            else datetime.fromtimestamp(payload["nbf"], now.tzinfo).isoformat()
        )
        return NOT_YET_VALID, f"not valid before {start}", TOO_EARLY
    if ("exp" in payload and payload["exp"] <= now.timestamp()) or (
        claims is not None and claims.valid_until < today
    ):
        end = (
            claims.valid_until.isoformat()
            if claims is not None
            else datetime.fromtimestamp(payload["exp"], now.tzinfo).isoformat()
        )
        return EXPIRED, f"expired: valid until {end}", TOO_LATE
    if claims is None:
        return (
            VALID,
            "a genuine SMART Health Card of another kind: not an examination certificate",
            OTHER_CARD_TYPE,
        )
    return VALID, None, None
