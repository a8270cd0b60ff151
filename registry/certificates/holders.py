"""The certificate holder: the name a card carries, its sealed copy, the secret holder link.

The card and the printed page carry one name in one script: the Latin-script variant when the
examination recorded one (it is what passports and their machine-readable zone print, and any
SMART Health Card verifier can display it), otherwise the first name recorded. Given names of
the same script follow the family name, then the patronymic of that script.

The holder secret is derived, not stored: HMAC-SHA-256 under a key derived from the registry's
revocation secret, over the examination id, cut to 128 bits. Every certificate of one
examination (one per destination, and the new ones after an amendment) shares it, so the link
printed on any of them shows the holder all of them, and a PDF can be rendered again at any
time. The database keeps only its SHA-256.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit.service import SystemActor
from registry.certificates.models import Certificate
from registry.config import Settings
from registry.crypto.digests import equal, hmac_sha256, sha256_text_hex
from registry.crypto.encryption import DataCipher
from registry.crypto.keys import b64url
from registry.crypto.keystore import KeyStore
from registry.fhir.person import is_latin
from registry.fhir.record import PersonData

# The printed page's first language, by the holder's citizenship; Russian is always beside it.
LANGUAGE_BY_CITIZENSHIP = {"TJ": "tg", "KG": "ky", "UZ": "uz", "KZ": "kk"}
DEFAULT_LANGUAGE = "ru"
_HOLDER_KEY_LABEL = b"registry holder link key v1"
_RECOVERY_KEY_LABEL = b"registry holder recovery code v1"
# The certificate ids' alphabet: no 0/O, 1/I/L or U to misread on paper.
RECOVERY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"

# the migrant opening their own certificates by the secret link, as the audit log names them
HOLDER = SystemActor(actor_id="holder", role="holder")


@dataclass(frozen=True)
class Holder:
    """Who a certificate is for, as the card and the printed page name them."""

    family_name: str
    given_names: tuple[str, ...]
    birth_date: date
    citizenship: str | None

    @property
    def language(self) -> str:
        """The language the printed certificate is written in first."""
        return LANGUAGE_BY_CITIZENSHIP.get(self.citizenship or "", DEFAULT_LANGUAGE)


def holder_from_person(person: PersonData) -> Holder:
    """The holder's name in one script (Latin when recorded), birth date and citizenship."""
    family = person.family_names[0]
    latin = is_latin(family)
    given = [g for g in person.given_names if is_latin(g) == latin] or list(person.given_names[:1])
    if person.patronymic and is_latin(person.patronymic) == latin:
        given.append(person.patronymic)
    return Holder(
        family_name=family,
        given_names=tuple(given),
        birth_date=person.birth_date,
        citizenship=person.citizenship,
    )


def data_cipher(settings: Settings, keystore: KeyStore) -> DataCipher:
    """The cipher for personal data at rest, built the way the application builds it."""
    return DataCipher(settings.data_keys or (keystore.secret("data"),))


def holder_context(certificate_id: str) -> bytes:
    """What a sealed holder is bound to: its certificate."""
    return f"certificate-holder:{certificate_id}".encode()


def card_context(certificate_id: str) -> bytes:
    """What a sealed card is bound to: its certificate."""
    return f"certificate-card:{certificate_id}".encode()


def seal_holder(holder: Holder, cipher: DataCipher, *, certificate_id: str) -> bytes:
    """The holder, encrypted and bound to one certificate."""
    document = {
        "family_name": holder.family_name,
        "given_names": list(holder.given_names),
        "birth_date": holder.birth_date.isoformat(),
        "citizenship": holder.citizenship,
    }
    plain = json.dumps(document, ensure_ascii=False).encode("utf-8")
    return cipher.encrypt(plain, context=holder_context(certificate_id))


def open_holder(sealed: bytes, cipher: DataCipher, *, certificate_id: str) -> Holder:
    """The holder of one certificate, decrypted."""
    plain = cipher.decrypt(sealed, context=holder_context(certificate_id))
    document = json.loads(plain)
    return Holder(
        family_name=document["family_name"],
        given_names=tuple(document["given_names"]),
        birth_date=date.fromisoformat(document["birth_date"]),
        citizenship=document["citizenship"],
    )


def seal_card(jws: str, cipher: DataCipher, *, certificate_id: str) -> bytes:
    """A card's JWS, encrypted and bound to its certificate."""
    return cipher.encrypt(jws.encode("ascii"), context=card_context(certificate_id))


def open_card(sealed: bytes, cipher: DataCipher, *, certificate_id: str) -> str:
    """A certificate's current card JWS, decrypted."""
    return cipher.decrypt(sealed, context=card_context(certificate_id)).decode()


def holder_secret(keystore: KeyStore, *, examination_id: str) -> str:
    """The secret of the holder link printed on every certificate of an examination."""
    key = hmac_sha256(keystore.secret("rid"), _HOLDER_KEY_LABEL)
    return b64url(hmac_sha256(key, f"examination:{examination_id}".encode())[:16])


def recovery_code(keystore: KeyStore, *, examination_id: str) -> str:
    """The short code printed on the holder slip beside the link, e.g. ``7F3K-9QPX``.

    With a certificate number and the birth date it reopens the holder page when the slip's
    link is lost. Derived like the secret (never stored); eight characters of the certificate
    id alphabet, so it is as easy to type as a certificate number.
    """
    key = hmac_sha256(keystore.secret("rid"), _RECOVERY_KEY_LABEL)
    digest = hmac_sha256(key, f"examination:{examination_id}".encode())
    code = "".join(RECOVERY_ALPHABET[byte % len(RECOVERY_ALPHABET)] for byte in digest[:8])
    return f"{code[:4]}-{code[4:]}"


def normalise_recovery_code(text: str) -> str:
    """A typed recovery code in the printed form (upper case, one hyphen), or "" if not one."""
    compact = "".join(ch for ch in (text or "").upper() if ch.isalnum())
    if len(compact) != 8 or any(ch not in RECOVERY_ALPHABET for ch in compact):
        return ""
    return f"{compact[:4]}-{compact[4:]}"


def secret_hash(secret: str) -> str:
    """What the database keeps of a holder secret: its SHA-256, hex."""
    return sha256_text_hex(secret)


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Whether a presented holder secret is the one whose hash is stored (constant time)."""
    return equal(secret_hash(secret), stored_hash)


def certificates_for_holder(session: Session, secret: str) -> list[Certificate]:
    """The certificates a holder link opens, oldest first (the caller audits the read)."""
    if not secret or len(secret) > 64:
        return []
    return list(
        session.scalars(
            select(Certificate)
            .where(Certificate.holder_secret_hash == secret_hash(secret))
            .order_by(Certificate.issued_at, Certificate.id)
        )
    )
