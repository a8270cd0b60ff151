"""Examination certificates as SMART Health Cards (https://spec.smarthealth.cards).

A card says only "this person meets the examination requirements of <destination> for
<purpose>", with the certificate id, the clinic and the validity period: no test, result or
diagnosis, ever. It follows the spec's rules for cards that are printed as QR codes: minified
JSON, raw DEFLATE, an ES256 compact JWS whose header carries ``zip`` and ``kid``, a FHIR
``collection`` Bundle with ``resource:N`` references and no ``id``, ``meta``, ``text`` or
``display``, and a JWS of at most 1195 characters so it fits one version 22 QR code at error
correction level L.
"""

from __future__ import annotations

import json
import operator
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit

from registry.certificates.rulesets import PURPOSES
from registry.crypto import jws
from registry.crypto.digests import hmac_sha256
from registry.crypto.keys import (
    PrivateKey,
    PublicKey,
    b64url,
    b64url_decode,
    public_jwk,
    thumbprint,
)
from registry.jsonlimits import JSONHasNul, JSONNotFinite, loads_strict

HEALTH_CARD_TYPE = "https://smarthealth.cards#health-card"
FHIR_BASE = "https://exam-registry.org/fhir"
EXAMINATION_CERTIFICATE_TYPE = f"{FHIR_BASE}/examination-certificate"
STATEMENT_SYSTEM = f"{FHIR_BASE}/CodeSystem/certificate-statement"
PURPOSE_SYSTEM = f"{FHIR_BASE}/CodeSystem/exam-purpose"
CERTIFICATE_ID_SYSTEM = f"{FHIR_BASE}/certificate-id"
CLINIC_ID_SYSTEM = f"{FHIR_BASE}/clinic-id"
EXAMINATION_HASH_SYSTEM = f"{FHIR_BASE}/examination-sha256"
COUNTRY_SYSTEM = "urn:iso:std:iso:3166"

# Codes of our certificate-statement CodeSystem.
MEETS_REQUIREMENTS = "meets-examination-requirements"
DESTINATION_COMPONENT = "destination"
PURPOSE_COMPONENT = "purpose"
CLINIC_NAME_COMPONENT = "clinic-name"

FHIR_VERSION = "4.0.1"
HEALTH_CARD_MEDIA_TYPE = "application/smart-health-card"
QR_PREFIX = "shc:/"
# Longest JWS that fits one version 22 QR at error correction L (spec FAQ, "QR code").
MAX_SINGLE_QR_JWS = 1195
# A genuine card inflates to a few kilobytes; anything past this is a decompression bomb.
MAX_INFLATED_PAYLOAD = 256 * 1024
# the range of card times (nbf, exp) we read, in seconds since 1970: up to 3000-01-01
EARLIEST_CARD_TIME = 0
LATEST_CARD_TIME = 32_503_680_000
MAX_HEALTH_CARD_FILE = 1024 * 1024
TRUNCATION_MARK = "…"

_SHC_HEADER = {"zip": "DEF"}
# An ES256 signature is 64 bytes, 86 base64url characters; a kid is an RFC 7638 SHA-256
# thumbprint, 43 characters. Together they fix the JWS overhead around the payload.
_SIGNATURE_LENGTH = 86
_KID_LENGTH = 43
_JWS_CHARACTERS = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")
# Each digit pair of a QR and the character it stands for (00..77 only).
_QR_PAIRS = {f"{value:02d}": chr(value + 45) for value in range(78)}
_RID = re.compile(r"[A-Za-z0-9_\-]{1,24}")
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


class CardFormatError(ValueError):
    """A card, QR text, file or CRL that does not follow the SMART Health Cards format."""


@dataclass(frozen=True)
class CertificateClaims:
    """What one of our cards states, read back from a decoded payload."""

    issuer: str
    certificate_id: str
    family_name: str
    given_names: tuple[str, ...]
    birth_date: str
    destination: str
    purpose: str
    clinic_id: str
    clinic_name: str | None
    issued_at: datetime
    valid_from: date
    valid_until: date
    rid: str | None
    examination_sha256: str | None


# --- payload -------------------------------------------------------------------------------


def _coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def minify(value: Any) -> bytes:
    """Minified UTF-8 JSON: no optional whitespace, non-ASCII letters kept as they are."""
    # ensure_ascii=False matters: a Cyrillic letter is 2 bytes in UTF-8 but 6 as a \u escape.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def deflate(raw: bytes) -> bytes:
    """Raw DEFLATE (RFC 1951, no zlib or gzip header), as the spec requires."""
    compressor = zlib.compressobj(level=9, method=zlib.DEFLATED, wbits=-15)
    return compressor.compress(raw) + compressor.flush()


def inflate(compressed: bytes, *, limit: int = MAX_INFLATED_PAYLOAD) -> bytes:
    """Raw INFLATE with a size cap; raises CardFormatError on bombs, junk and trailing bytes."""
    decompressor = zlib.decompressobj(wbits=-15)
    try:
        raw = decompressor.decompress(compressed, limit + 1)
    except zlib.error as exc:
        raise CardFormatError(f"the payload is not raw DEFLATE data: {exc}") from exc
    if len(raw) > limit or decompressor.unconsumed_tail:
        raise CardFormatError(f"the payload inflates to more than {limit} bytes")
    if not decompressor.eof:
        raise CardFormatError("the DEFLATE stream of the payload is truncated")
    if decompressor.unused_data:
        raise CardFormatError("the payload has bytes after its DEFLATE stream")
    return raw


def projected_jws_length(payload: dict[str, Any]) -> int:
    """The length of the JWS ``encode_card`` makes of this payload under a thumbprint kid."""
    header = minify({"alg": "ES256", "kid": "k" * _KID_LENGTH, **_SHC_HEADER})
    return len(b64url(header)) + 1 + len(b64url(deflate(minify(payload)))) + 1 + _SIGNATURE_LENGTH


def _local_host(hostname: str | None) -> bool:
    # Names reserved by RFC 6761 (.test, .localhost) never resolve on the internet, so a card
    # naming one can only ever be checked on the machine or test network that issued it.
    host = (hostname or "").lower()
    return host in _LOOPBACK_HOSTS or host.endswith((".localhost", ".test"))


def _check_issuer(issuer: str) -> None:
    # The spec: iss uses https and has no trailing slash. Plain http is allowed on a loopback
    # or reserved test host so a developer's registry can issue cards to itself.
    parts = urlsplit(issuer)
    local = parts.scheme == "http" and _local_host(parts.hostname)
    if not (parts.scheme == "https" or local) or not parts.netloc or issuer.endswith("/"):
        raise ValueError(f"issuer must be an https URL without a trailing slash, not {issuer!r}")
    if parts.query or parts.fragment:
        raise ValueError("issuer must not carry a query or fragment")


def _payload(
    *,
    issuer: str,
    certificate_id: str,
    family_name: str,
    given_names: Sequence[str],
    birth_date: date,
    destination: str,
    purpose: str,
    clinic_id: str,
    clinic_name: str | None,
    issued_at: datetime,
    valid_from: date,
    valid_until: date,
    rid: str,
    examination_sha256: str | None,
) -> dict[str, Any]:
    name: dict[str, Any] = {"family": family_name}
    if given_names:
        name["given"] = list(given_names)
    patient = {"resourceType": "Patient", "name": [name], "birthDate": birth_date.isoformat()}
    components: list[dict[str, Any]] = [
        {
            "code": _coding(STATEMENT_SYSTEM, DESTINATION_COMPONENT),
            "valueCodeableConcept": _coding(COUNTRY_SYSTEM, destination),
        },
        {
            "code": _coding(STATEMENT_SYSTEM, PURPOSE_COMPONENT),
            "valueCodeableConcept": _coding(PURPOSE_SYSTEM, purpose),
        },
    ]
    if clinic_name:
        components.append(
            {"code": _coding(STATEMENT_SYSTEM, CLINIC_NAME_COMPONENT), "valueString": clinic_name}
        )
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": CERTIFICATE_ID_SYSTEM, "value": certificate_id}],
        "status": "final",
        "code": _coding(STATEMENT_SYSTEM, MEETS_REQUIREMENTS),
        "subject": {"reference": "resource:0"},
        # The validity period: the statement holds from the first to the last valid day.
        "effectivePeriod": {"start": valid_from.isoformat(), "end": valid_until.isoformat()},
        "issued": _instant(issued_at),
        "performer": [{"identifier": {"system": CLINIC_ID_SYSTEM, "value": clinic_id}}],
    }
    if examination_sha256:
        observation["derivedFrom"] = [
            {"identifier": {"system": EXAMINATION_HASH_SYSTEM, "value": examination_sha256}}
        ]
    observation["component"] = components
    # The card expires at the end of its last valid day, midnight UTC.
    expires = datetime.combine(valid_until + timedelta(days=1), time(0), tzinfo=UTC)
    return {
        "iss": issuer,
        "nbf": int(issued_at.timestamp()),
        "exp": int(expires.timestamp()),
        "vc": {
            # SHC 1.4 deprecates types beyond health-card; the statement coding says what it is
            "type": [HEALTH_CARD_TYPE],
            "credentialSubject": {
                "fhirVersion": FHIR_VERSION,
                "fhirBundle": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [
                        {"fullUrl": "resource:0", "resource": patient},
                        {"fullUrl": "resource:1", "resource": observation},
                    ],
                },
            },
            "rid": rid,
        },
    }


def _initial(name: str) -> str:
    """``Абдукаххоровна`` → ``А.``: how forms in the region abbreviate given names."""
    return name if len(name) <= 2 else f"{name[0]}."


def build_payload(
    *,
    issuer: str,
    certificate_id: str,
    family_name: str,
    given_names: Sequence[str],
    birth_date: date,
    destination: str,
    purpose: str,
    clinic_id: str,
    clinic_name: str | None,
    issued_at: datetime,
    valid_from: date,
    valid_until: date,
    rid: str,
    examination_sha256: str | None = None,
) -> dict[str, Any]:
    """The JWT claims of an examination certificate card, made to fit one QR code.

    When the signed card would exceed MAX_SINGLE_QR_JWS characters it is shortened, least
    identifying part first, until it fits: the clinic name goes (the clinic id stays and the
    trust list resolves it); given names become initials, the patronymic and later names
    before the first; last, the family name is cut and marked with "…". Deterministic, and the
    registry keeps the full name for verification by certificate id.
    """
    _check_issuer(issuer)
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    if valid_until < valid_from:
        raise ValueError("valid_until is before valid_from")
    if not _RID.fullmatch(rid):
        raise ValueError("rid must be 1 to 24 base64url characters")
    if not family_name.strip():
        raise ValueError("family_name is empty")
    if not re.fullmatch(r"[A-Z]{2}", destination):
        raise ValueError("destination must be an ISO 3166-1 alpha-2 code")
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}")

    def card(family: str, given: Sequence[str], clinic: str | None) -> dict[str, Any] | None:
        payload = _payload(
            issuer=issuer,
            certificate_id=certificate_id,
            family_name=family,
            given_names=given,
            birth_date=birth_date,
            destination=destination,
            purpose=purpose,
            clinic_id=clinic_id,
            clinic_name=clinic,
            issued_at=issued_at,
            valid_from=valid_from,
            valid_until=valid_until,
            rid=rid,
            examination_sha256=examination_sha256,
        )
        return payload if projected_jws_length(payload) <= MAX_SINGLE_QR_JWS else None

    given = [g for g in given_names if g.strip()]
    payload = card(family_name, given, clinic_name)
    if payload is None and clinic_name:
        payload = card(family_name, given, None)
    for index in reversed(range(len(given))):
        if payload is not None:
            return payload
        given[index] = _initial(given[index])
        payload = card(family_name, given, None)
    if payload is not None:
        return payload
    # The longest prefix of the family name that fits, by bisection (compressed size grows
    # with the prefix), so even an absurd name costs a dozen compressions, not thousands.
    shortest, longest = 1, len(family_name) - 1
    while shortest <= longest:
        middle = (shortest + longest) // 2
        candidate = card(family_name[:middle] + TRUNCATION_MARK, given, None)
        if candidate is None:
            longest = middle - 1
        else:
            payload, shortest = candidate, middle + 1
    if payload is None:
        raise ValueError("the card does not fit one QR code even with names shortened")
    return payload


# --- JWS -----------------------------------------------------------------------------------


def encode_card(payload: dict[str, Any], key: PrivateKey, kid: str) -> str:
    """The compact JWS of a card: minified, raw-DEFLATEd payload, header alg ES256, zip, kid."""
    # The spec makes the kid the key's RFC 7638 thumbprint; verifiers look the key up by it.
    if kid != thumbprint(public_jwk(key)):
        raise ValueError("kid must be the RFC 7638 thumbprint of the signing key")
    return jws.sign(deflate(minify(payload)), key, kid=kid, headers=_SHC_HEADER)


def _read_payload(compressed: bytes) -> dict[str, Any]:
    raw = inflate(compressed)
    try:
        payload = loads_strict(raw.decode("utf-8"))
    except JSONNotFinite as exc:
        raise CardFormatError(f"the payload is not JSON: {exc}") from exc
    except JSONHasNul as exc:
        raise CardFormatError(f"the payload holds a NUL character: {exc}") from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CardFormatError("the payload is not UTF-8 JSON") from exc
    if not isinstance(payload, dict):
        raise CardFormatError("the payload is not a JSON object")
    _check_card_shape(payload)
    return payload


def _check_time(payload: dict[str, Any], claim: str) -> None:
    value = payload[claim]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise CardFormatError(f"the payload's {claim} is not a number")
    # NaN and infinities never reach here (the JSON parser refuses them); a time outside these
    # years is a mistake (milliseconds instead of seconds) or an attack on date arithmetic
    if not EARLIEST_CARD_TIME <= value < LATEST_CARD_TIME:
        raise CardFormatError(
            f"the payload's {claim} is not a time in seconds between 1970 and 3000: {value!r}"
        )


def _check_card_shape(payload: dict[str, Any]) -> None:
    if not isinstance(payload.get("iss"), str):
        raise CardFormatError("the payload has no iss")
    if "nbf" not in payload:
        raise CardFormatError("the payload has no numeric nbf")
    _check_time(payload, "nbf")
    if "exp" in payload:
        _check_time(payload, "exp")
    vc = payload.get("vc")
    if not isinstance(vc, dict):
        raise CardFormatError("the payload has no vc object")
    types = vc.get("type")
    if not isinstance(types, list) or HEALTH_CARD_TYPE not in types:
        raise CardFormatError(f"vc.type does not include {HEALTH_CARD_TYPE}")
    subject = vc.get("credentialSubject")
    if not isinstance(subject, dict) or not isinstance(subject.get("fhirBundle"), dict):
        raise CardFormatError("vc.credentialSubject.fhirBundle is missing")
    if subject["fhirBundle"].get("resourceType") != "Bundle":
        raise CardFormatError("vc.credentialSubject.fhirBundle is not a FHIR Bundle")
    if "rid" in vc and (not isinstance(vc["rid"], str) or not _RID.fullmatch(vc["rid"])):
        raise CardFormatError("vc.rid is not 1 to 24 base64url characters")


def _split(token: str) -> tuple[dict[str, Any], bytes]:
    if not isinstance(token, str) or not _JWS_CHARACTERS.fullmatch(token):
        raise CardFormatError("a card is a compact JWS: three base64url parts joined by dots")
    try:
        header = jws.read_header(token)
    except jws.JWSError as exc:
        raise CardFormatError(str(exc)) from exc
    if header.get("zip") != "DEF":
        raise CardFormatError('the JWS header lacks "zip": "DEF"')
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise CardFormatError("the JWS header has no kid")
    try:
        compressed = b64url_decode(token.split(".")[1])
    except ValueError as exc:
        raise CardFormatError("the JWS payload is not base64url") from exc
    return header, compressed


def decode_card(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and inflated payload of a card, without checking its signature."""
    header, compressed = _split(token)
    return header, _read_payload(compressed)


def verify_card(token: str, key: PublicKey) -> dict[str, Any]:
    """The payload of a card whose ES256 signature verifies against ``key``.

    Raises CardFormatError for a malformed card and ``registry.crypto.jws.JWSError`` when the
    signature does not verify.
    """
    _split(token)
    return _read_payload(jws.verify(token, key))


def card_type(payload: dict[str, Any]) -> str:
    """``examination-certificate`` for one of our certificate cards, ``other`` for any other.

    A certificate card is recognised by its Observation coded with our certificate statement;
    cards issued before the extra ``vc.type`` was dropped carry that type as well.
    """
    vc = payload.get("vc", {})
    types = vc.get("type", [])
    if EXAMINATION_CERTIFICATE_TYPE in types or _states_meeting_requirements(vc):
        return "examination-certificate"
    return "other"


def _states_meeting_requirements(vc: dict[str, Any]) -> bool:
    bundle = vc.get("credentialSubject", {}).get("fhirBundle", {})
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Observation":
            continue
        codings = resource.get("code", {}).get("coding", [])
        if isinstance(codings, list) and any(
            isinstance(c, dict)
            and c.get("system") == STATEMENT_SYSTEM
            and c.get("code") == MEETS_REQUIREMENTS
            for c in codings
        ):
            return True
    return False


def _components(observation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The statement's components by their code (the first component of each code)."""
    found: dict[str, dict[str, Any]] = {}
    for component in observation.get("component", []):
        for coding in component.get("code", {}).get("coding", []):
            if coding.get("system") == STATEMENT_SYSTEM:
                found.setdefault(coding.get("code"), component)
    return found


def read_certificate(payload: dict[str, Any]) -> CertificateClaims:
    """The statement of one of our certificate cards; raises CardFormatError for anything else."""
    try:
        return _read_statement(payload)
    except CardFormatError:
        # the statement is read first: a card it fits is a certificate card (card_type)
        if card_type(payload) != "examination-certificate":
            raise CardFormatError("not an examination certificate card") from None
        raise


def _read_statement(payload: dict[str, Any]) -> CertificateClaims:
    try:
        entries = payload["vc"]["credentialSubject"]["fhirBundle"]["entry"]
        resources = {e["fullUrl"]: e["resource"] for e in entries}
        patient = resources["resource:0"]
        observation = resources["resource:1"]
        if patient["resourceType"] != "Patient" or observation["resourceType"] != "Observation":
            raise CardFormatError("the card's bundle is not a Patient and an Observation")
        code = observation["code"]["coding"][0]
        if (code["system"], code["code"]) != (STATEMENT_SYSTEM, MEETS_REQUIREMENTS):
            raise CardFormatError("the card's Observation is not a certificate statement")
        name = patient["name"][0]
        components = _components(observation)
        destination = components.get(DESTINATION_COMPONENT)
        purpose = components.get(PURPOSE_COMPONENT)
        clinic_name = components.get(CLINIC_NAME_COMPONENT)
        if destination is None or purpose is None:
            raise CardFormatError("the card states no destination or purpose")
        derived = observation.get("derivedFrom", [])
        return CertificateClaims(
            issuer=payload["iss"],
            certificate_id=next(
                i["value"]
                for i in observation["identifier"]
                if i.get("system") == CERTIFICATE_ID_SYSTEM
            ),
            family_name=name["family"],
            given_names=tuple(name.get("given", ())),
            birth_date=patient["birthDate"],
            destination=destination["valueCodeableConcept"]["coding"][0]["code"],
            purpose=purpose["valueCodeableConcept"]["coding"][0]["code"],
            clinic_id=observation["performer"][0]["identifier"]["value"],
            clinic_name=clinic_name["valueString"] if clinic_name else None,
            issued_at=datetime.fromtimestamp(payload["nbf"], UTC),
            valid_from=date.fromisoformat(observation["effectivePeriod"]["start"]),
            valid_until=date.fromisoformat(observation["effectivePeriod"]["end"]),
            rid=payload["vc"].get("rid"),
            examination_sha256=next(
                (
                    d["identifier"]["value"]
                    for d in derived
                    if d.get("identifier", {}).get("system") == EXAMINATION_HASH_SYSTEM
                ),
                None,
            ),
        )
    except CardFormatError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, StopIteration, ValueError) as exc:
        raise CardFormatError(f"the certificate card is incomplete: {exc!r}") from exc


# --- revocation ----------------------------------------------------------------------------


def compute_rid(secret: bytes, kid: str, certificate_id: str) -> str:
    """The card's revocation id: base64url of the first 64 bits of HMAC-SHA-256(secret‖kid, id)."""
    # The spec's construction: rid = base64url(hmac-sha-256(secret_key || kid, user_id)[1..64]),
    # with a 256-bit random secret; the certificate id is our "user id", so every certificate
    # can be revoked on its own, and its rid changes when it is re-issued under a new key.
    if len(secret) < 32:
        raise ValueError("the revocation secret must be at least 256 bits")
    mac = hmac_sha256(secret + kid.encode("utf-8"), certificate_id.encode("utf-8"))
    return b64url(mac[:8])


def _epoch(moment: int | datetime) -> int:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("revocation times must be timezone-aware")
        return int(moment.timestamp())
    if isinstance(moment, bool) or not isinstance(moment, int) or moment < 0:
        raise ValueError("a revocation time is seconds since 1970 or an aware datetime")
    return moment


def crl_document(
    kid: str, ctr: int, rids_with_timestamps: Iterable[tuple[str, int | datetime | None]]
) -> dict[str, Any]:
    """The Card Revocation List of one key, served at ``{iss}/.well-known/crl/{kid}.json``.

    Each revoked rid may carry a time: cards with that rid are revoked when their ``nbf`` is
    before it (the spec's ``rid.timestamp`` form); without one, every card with that rid is.
    """
    if isinstance(ctr, bool) or not isinstance(ctr, int) or ctr < 1:
        raise ValueError("ctr counts updates of the list and starts at 1")
    entries = set()
    for rid, revoked_before in rids_with_timestamps:
        if not _RID.fullmatch(rid):
            raise ValueError(f"{rid!r} is not a rid (1 to 24 base64url characters)")
        entries.add(rid if revoked_before is None else f"{rid}.{_epoch(revoked_before)}")
    return {"kid": kid, "method": "rid", "ctr": ctr, "rids": sorted(entries)}


def rid_revoked(crl: dict[str, Any], *, rid: str, nbf: int | float) -> bool:
    """Whether a CRL revokes the card with this rid and ``nbf``, following the spec's rule."""
    if crl.get("method") != "rid" or not isinstance(crl.get("rids"), list):
        raise CardFormatError("not a revocation list of method rid")
    for entry in crl["rids"]:
        if not isinstance(entry, str):
            raise CardFormatError("a CRL entry is not text")
        listed, _, revoked_before = entry.partition(".")
        if listed != rid:
            continue
        if not revoked_before:
            return True
        if not revoked_before.isdigit():
            raise CardFormatError(f"CRL entry {entry!r} has a malformed timestamp")
        if nbf < int(revoked_before):
            return True
    return False


# --- files and QR text ---------------------------------------------------------------------


def health_card_file(jws_list: Iterable[str]) -> bytes:
    """A ``.smart-health-card`` file (media type application/smart-health-card)."""
    return minify({"verifiableCredential": list(jws_list)})


def read_health_card_file(raw: bytes) -> list[str]:
    """The card JWSs in a ``.smart-health-card`` file; raises CardFormatError when malformed."""
    if len(raw) > MAX_HEALTH_CARD_FILE:
        raise CardFormatError("the file is too large to be a health card file")
    try:
        document = loads_strict(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CardFormatError("a health card file is UTF-8 JSON") from exc
    cards = document.get("verifiableCredential") if isinstance(document, dict) else None
    if not isinstance(cards, list) or not all(isinstance(c, str) for c in cards):
        raise CardFormatError("a health card file has a verifiableCredential array of JWS")
    return cards


def qr_payload(token: str) -> str:
    """The text of a card's single QR code: ``shc:/`` and two digits per JWS character."""
    if not isinstance(token, str) or not _JWS_CHARACTERS.fullmatch(token):
        raise CardFormatError("a card is a compact JWS: three base64url parts joined by dots")
    if len(token) > MAX_SINGLE_QR_JWS:
        raise CardFormatError(
            f"the card is {len(token)} characters; one QR code holds {MAX_SINGLE_QR_JWS}"
        )
    # Ord(c) - 45 puts every JWS character ('-' is 45, 'z' is 122) in 00..77.
    return QR_PREFIX + "".join(f"{ord(c) - 45:02d}" for c in token)


def jws_from_qr(text: str) -> str:
    """The JWS in the text of a scanned single-code ``shc:/`` QR; raises CardFormatError."""
    if not isinstance(text, str):
        raise CardFormatError("QR text is a string")
    text = text.strip()
    if text[: len(QR_PREFIX)].lower() != QR_PREFIX:
        raise CardFormatError("a SMART Health Card QR starts with shc:/")
    digits = text[len(QR_PREFIX) :]
    if "/" in digits:
        raise CardFormatError("chunked (multi-QR) cards are deprecated and not accepted")
    if not digits or not digits.isascii() or not digits.isdigit():
        raise CardFormatError("after shc:/ a card QR holds only the digits 0-9")
    if len(digits) % 2:
        raise CardFormatError("a card QR holds an even number of digits")
    if len(digits) > 2 * MAX_SINGLE_QR_JWS:
        raise CardFormatError(f"a single card QR holds at most {MAX_SINGLE_QR_JWS} characters")
    # pairs and their characters looked up in C: a QR is read on every verification
    characters = list(map(_QR_PAIRS.get, map(operator.add, digits[0::2], digits[1::2])))
    if None in characters:
        raise CardFormatError("digit pair above 77: not a JWS character")
    token = "".join(characters)  # type: ignore[arg-type]
    if not _JWS_CHARACTERS.fullmatch(token):
        raise CardFormatError("the QR does not hold a compact JWS")
    return token
