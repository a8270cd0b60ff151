"""Persons: matched through the blind index on documents, identity sealed at rest."""

from __future__ import annotations

import json
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session, joinedload

from registry.crypto.encryption import (
    DataCipher,
    blind_index,
    document_index,
    normalise_document_number,
)
from registry.db import dialect_insert, row_of
from registry.examinations.models import Person, PersonDocument, PersonNameKey
from registry.fhir import PersonData


@dataclass(frozen=True)
class Identity:
    """A person's identity as opened from the sealed column."""

    family_names: list[str]
    given_names: list[str]
    patronymic: str | None
    sex: str
    birth_date: date
    citizenship: str | None
    display_name: str
    documents: list[dict[str, Any]]  # type, country, hint (last four characters), expiry

    @property
    def document_hint(self) -> str | None:
        """The hint employers compare with the document in front of them: ``•••• 4821``."""
        return f"•••• {self.documents[-1]['hint']}" if self.documents else None


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text).casefold()
    return "".join(ch for ch in decomposed if ch.isalnum())


# Cyrillic letters of Russian, Kazakh, Kyrgyz, Tajik and Uzbek Cyrillic, as Latin letters.
_CYRILLIC = str.maketrans(
    {
        **dict(zip("абвгдезийклмнопрстуфыэ", "abvgdeziiklmnoprstufye", strict=True)),
        **dict(zip("ғёӣқңөүұӯҳһәі", "geiknouuuhhai", strict=True)),
        **{"ж": "zh", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sh", "ю": "yu"},
        **{"я": "ya", "ҷ": "j", "ъ": "", "ь": ""},
    }
)
# Spellings of one sound across transliteration habits (Russian passport, Uzbek Latin, English).
_SOUNDS = (
    ("dzh", "j"),
    ("dj", "j"),
    ("zh", "j"),
    ("kh", "h"),
    ("x", "h"),
    ("q", "k"),
    ("ts", "s"),
    ("yu", "u"),
    ("ya", "a"),
    ("ye", "e"),
    ("yo", "o"),
    ("iy", "i"),
    ("y", "i"),
    ("w", "v"),
)


def name_skeleton(name: str) -> str:
    """A name reduced to what survives transliteration: Каримов, Karimov, Qarimov -> karimov."""
    text = _fold(name.casefold().translate(_CYRILLIC))
    text = "".join(ch for ch in text if "a" <= ch <= "z")
    for spelling, sound in _SOUNDS:
        text = text.replace(spelling, sound)
    return "".join(ch for i, ch in enumerate(text) if i == 0 or text[i - 1] != ch)


def name_keys(secret: bytes, person: PersonData) -> set[str]:
    """Blind indexes of every (family, given) name variant with the birth date."""
    birth = person.birth_date.isoformat()
    return {
        blind_index(secret, "name-variant-birth", family, given, birth)
        for family in {name_skeleton(f) for f in person.family_names} - {""}
        for given in {name_skeleton(g.split()[0]) for g in person.given_names if g.split()} - {""}
    }


def name_birth_index(secret: bytes, person: PersonData) -> str:
    """Blind index of the first (Latin) family name and birth date, for proposed matches."""
    family = _fold(person.family_names[0]) if person.family_names else ""
    return blind_index(secret, "name-birth", family, person.birth_date.isoformat())


def _sealed_identity(person: PersonData) -> dict[str, Any]:
    return {
        "family_names": person.family_names,
        "given_names": person.given_names,
        "patronymic": person.patronymic,
        "sex": person.sex,
        "birth_date": person.birth_date.isoformat(),
        "citizenship": person.citizenship,
        "display_name": person.display_name,
        "documents": [
            {
                "type": d.type,
                "country": d.country,
                "hint": normalise_document_number(d.number)[-4:],
                "expiry": d.expiry.isoformat() if d.expiry else None,
            }
            for d in person.documents
        ],
    }


def sealed_context(person_id: str, what: str) -> bytes:
    """What a person's sealed ``identity`` or ``photo`` is bound to."""
    return f"person:{person_id}:{what}".encode()


def open_identity(person: Person, cipher: DataCipher) -> Identity:
    """Decrypt a person's identity."""
    return _identity(_opened(person, cipher))


def _opened(person: Person, cipher: DataCipher) -> bytes:
    return cipher.decrypt(person.sealed_identity, context=sealed_context(person.id, "identity"))


def _identity(plaintext: bytes) -> Identity:
    raw = json.loads(plaintext)
    raw["birth_date"] = date.fromisoformat(raw["birth_date"])
    return Identity(**raw)


def open_photo(person: Person, cipher: DataCipher) -> bytes | None:
    """Decrypt a person's photo, when one was captured."""
    if person.sealed_photo is None:
        return None
    return cipher.decrypt(person.sealed_photo, context=sealed_context(person.id, "photo"))


class Matched(NamedTuple):
    """The person a submission names, whether it is new, and who else holds its documents."""

    person: Person
    created: bool
    others: tuple[str, ...]  # other registered persons holding one of the documents, by id


def match_or_create(
    session: Session,
    *,
    person: PersonData,
    cipher: DataCipher,
    index_key: bytes,
    now: datetime,
) -> Matched:
    """The registered person holding any of these documents, or a new one; documents are added.

    A person whose passport changed keeps one history as long as one document of the new
    examination was seen before (e.g. the old passport or a national id card shown again). A
    document held by someone with another birth date does not link: a new person is registered
    and `linkage.propose_matches` records the pair for review. A person whose identity, photo
    and documents are as stored is not written at all.
    """
    indexes = {
        document_index(index_key, country=d.country, number=d.number): d for d in person.documents
    }
    # the holders with their persons in one statement; they are also the candidates that
    # linkage proposes, so nobody asks again
    holders = session.scalars(
        select(PersonDocument)
        .options(joinedload(PersonDocument.person, innerjoin=True))
        .where(PersonDocument.blind_index.in_(list(indexes)))
        .order_by(PersonDocument.id)
    ).all()
    identity = json.dumps(_sealed_identity(person)).encode()
    opened: dict[str, bytes] = {}
    for held in holders:
        if held.person_id not in opened:
            opened[held.person_id] = _opened(held.person, cipher)
    # A document links only with the same birth date: a mistyped number that happens to be
    # someone else's must not join, let alone overwrite, that person (it is proposed instead).
    found = next(
        (
            held
            for held in holders
            if _identity(opened[held.person_id]).birth_date == person.birth_date
        ),
        None,
    )
    name_birth = name_birth_index(index_key, person)
    if found is None:
        row = Person(
            id=f"P{secrets.token_hex(12)}",
            sealed_identity=b"",
            name_birth_index=name_birth,
            created_at=now,
            updated_at=now,
            documents=[],
        )
        session.add(row)
        changed = True
    else:
        row = found.person
        changed = (
            opened[row.id] != identity
            or row.name_birth_index != name_birth
            or (
                person.photo is not None
                and (
                    row.photo_content_type != person.photo.content_type
                    or open_photo(row, cipher) != person.photo.data
                )
            )
        )
    if changed:
        row.sealed_identity = cipher.encrypt(identity, context=sealed_context(row.id, "identity"))
        if person.photo is not None:
            row.sealed_photo = cipher.encrypt(
                person.photo.data, context=sealed_context(row.id, "photo")
            )
            row.photo_content_type = person.photo.content_type
        row.name_birth_index = name_birth
        row.updated_at = now
        # the name keys follow the names and birth date, which are part of the identity
        held_keys = (
            set()
            if found is None
            else set(
                session.scalars(
                    select(PersonNameKey.name_key).where(PersonNameKey.person_id == row.id)
                )
            )
        )
        for key in sorted(name_keys(index_key, person) - held_keys):
            session.add(PersonNameKey(person_id=row.id, name_key=key))
    known = {held.blind_index for held in holders if held.person_id == row.id}
    added = [
        PersonDocument(
            person_id=row.id,
            blind_index=index,
            country=document.country,
            document_type=document.type,
            first_seen_at=now,
        )
        for index, document in indexes.items()
        if index not in known
    ]
    if found is None:
        row.documents.extend(added)
    elif added:
        # a stored person's documents are not loaded to add one; a concurrent examination of
        # the same person may add the same document first
        session.flush()
        table = cast(Table, PersonDocument.__table__)
        session.connection().execute(
            dialect_insert(session)(table).on_conflict_do_nothing(
                index_elements=["person_id", "blind_index"]
            ),
            [row_of(document, without_id=True) for document in added],
        )
    others = tuple(sorted({held.person_id for held in holders} - {row.id}))
    return Matched(row, found is None, others)
