"""The card an API client downloads: exactly our SMART Health Card and nothing clinical in it."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.certificates import service as certificates
from registry.certificates import shc
from registry.certificates.models import Certificate
from registry.certificates.qr import qr_code
from registry.certificates.rulesets import CONCEPTS, OUTCOMES_BY_CONCEPT, load_rulesets
from registry.crypto.keys import b64url_decode, load_public_jwk
from tests.bundles import examination_bundle
from tests.certificates.builders import (
    PROFILES_DIR,
    certified,
    example,
    submit,
    with_name,
)
from tests.certificates.builders import (
    load_rulesets as publish_rulesets,
)
from tests.support import BASE_URL, World

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
# Our code systems that name tests, results and findings (not purposes or countries).
CLINICAL_SYSTEMS = {
    f"https://exam-registry.org/fhir/CodeSystem/{name}"
    for name in (
        "exam-test",
        "exam-outcome",
        "clinical-finding",
        "chest-xray-finding",
        "referral-reason",
    )
}
RESULT_WORDS = {
    "positive",
    "negative",
    "reactive",
    "nonreactive",
    "detected",
    "present",
    "absent",
    "normal",
    "abnormal",
    "indeterminate",
    "tb",
    "hiv",
    "syphilis",
    "tuberculosis",
    "leprosy",
}


@pytest.fixture(autouse=True)
def _published(world: World) -> None:
    publish_rulesets(world.app)
    world.clinic("TJ-DUS-0007")


def _codings(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if isinstance(value.get("code"), str) and "system" in value:
            yield value
        for item in value.values():
            yield from _codings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _codings(item)


def _deny_list() -> set[str]:
    """Every test, result and diagnosis code and word the registry knows of."""
    denied: set[str] = set()
    for path in PROFILES_DIR.rglob("*.json"):
        if "rulesets" in path.parts:
            continue
        document = json.loads(path.read_text("utf-8"))
        if document.get("resourceType") == "CodeSystem" and document["url"] in CLINICAL_SYSTEMS:
            denied.update(c["code"] for c in document.get("concept", []))
        for coding in _codings(document):
            if coding["system"] in {LOINC, SNOMED, *CLINICAL_SYSTEMS}:
                denied.add(coding["code"])
    denied.update(CONCEPTS)
    for outcomes in OUTCOMES_BY_CONCEPT.values():
        denied.update(outcomes)
    for ruleset in load_rulesets(PROFILES_DIR / "rulesets"):
        denied.update(f.condition for f in ruleset.disqualifying_findings)
        denied.update(t.key for t in ruleset.required_tests)
    return denied


DENIED = _deny_list()


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + "." + key, key
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def assert_nothing_clinical(payload: dict[str, Any]) -> None:
    """No key or value of the payload is a test, result or diagnosis code or word."""
    assert "LA6577-6" in DENIED and "36643-5" in DENIED and "10828004" in DENIED
    for path, text in _strings(payload):
        assert text not in DENIED, (path, text)
        if ".name[" in path or path.endswith(".valueString"):
            continue  # the holder's names and the clinic's name are free text
        if path.endswith(".photo_url") and "/" in text:
            # the last segment is a sealed token: random base64url, whose pieces may spell "tb"
            text, token = text.rsplit("/", 1)
            assert re.fullmatch(r"[A-Za-z0-9_-]+", token), (path, token)
        words = set(re.split(r"[^a-z0-9]+", text.lower()))
        assert not words & RESULT_WORDS, (path, text)
        assert not re.fullmatch(r"\d{3,6}-\d", text), (path, text)  # a LOINC-shaped code


def _download_card(world: World, certificate_id: str) -> str:
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    response = world.http.get(
        f"/api/v1/certificates/{certificate_id}/card.smart-health-card", headers=headers
    )
    assert response.status_code == 200, response.json
    assert response.mimetype == "application/smart-health-card"
    (token,) = shc.read_health_card_file(response.data)
    return token


def test_a_card_from_the_api_is_exactly_our_smart_health_card(world: World) -> None:
    examined_on = datetime.now(UTC).date() - timedelta(days=3)
    submission = submit(world, examined_on=examined_on)
    certificate = certified(submission)["KZ"]
    token = _download_card(world, certificate.id)
    assert len(token) <= shc.MAX_SINGLE_QR_JWS

    header, payload = shc.decode_card(token)
    active = world.ctx.keystore.active("certificate")
    assert header == {"alg": "ES256", "zip": "DEF", "kid": active.kid}
    jwks = world.http.get("/.well-known/jwks.json").json
    (published,) = [k for k in jwks["keys"] if k["kid"] == active.kid]
    assert (published["kty"], published["crv"], published["use"], published["alg"]) == (
        "EC",
        "P-256",
        "sig",
        "ES256",
    )
    assert shc.verify_card(token, load_public_jwk(published)) == payload
    # the payload is minified JSON, raw-DEFLATEd
    raw = shc.inflate(b64url_decode(token.split(".")[1]))
    assert raw == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

    valid_from = examined_on + timedelta(days=1)
    valid_until = examined_on + timedelta(days=89)
    signed = int(certificate.signed_at.timestamp())
    statement = "https://exam-registry.org/fhir/CodeSystem/certificate-statement"
    assert payload == {
        "iss": BASE_URL,
        "nbf": signed,
        "exp": int(
            datetime.combine(valid_until + timedelta(days=1), time(0), tzinfo=UTC).timestamp()
        ),
        "vc": {
            "type": [
                "https://smarthealth.cards#health-card",
            ],
            "credentialSubject": {
                "fhirVersion": "4.0.1",
                "fhirBundle": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [
                        {
                            "fullUrl": "resource:0",
                            "resource": {
                                "resourceType": "Patient",
                                "name": [{"family": "Karimov", "given": ["Rustam", "Saidovich"]}],
                                "birthDate": "1991-03-14",
                            },
                        },
                        {
                            "fullUrl": "resource:1",
                            "resource": {
                                "resourceType": "Observation",
                                "identifier": [
                                    {
                                        "system": "https://exam-registry.org/fhir/certificate-id",
                                        "value": certificate.id,
                                    }
                                ],
                                "status": "final",
                                "code": {
                                    "coding": [
                                        {
                                            "system": statement,
                                            "code": "meets-examination-requirements",
                                        }
                                    ]
                                },
                                "subject": {"reference": "resource:0"},
                                "effectivePeriod": {
                                    "start": valid_from.isoformat(),
                                    "end": valid_until.isoformat(),
                                },
                                "issued": datetime.fromtimestamp(signed, UTC).strftime(
                                    "%Y-%m-%dT%H:%M:%SZ"
                                ),
                                "performer": [
                                    {
                                        "identifier": {
                                            "system": "https://exam-registry.org/fhir/clinic-id",
                                            "value": "TJ-DUS-0007",
                                        }
                                    }
                                ],
                                "derivedFrom": [
                                    {
                                        "identifier": {
                                            "system": "https://exam-registry.org/fhir/examination-sha256",
                                            "value": submission.version.bundle_sha256,
                                        }
                                    }
                                ],
                                "component": [
                                    {
                                        "code": {
                                            "coding": [{"system": statement, "code": "destination"}]
                                        },
                                        "valueCodeableConcept": {
                                            "coding": [
                                                {"system": "urn:iso:std:iso:3166", "code": "KZ"}
                                            ]
                                        },
                                    },
                                    {
                                        "code": {
                                            "coding": [{"system": statement, "code": "purpose"}]
                                        },
                                        "valueCodeableConcept": {
                                            "coding": [
                                                {
                                                    "system": "https://exam-registry.org/fhir/CodeSystem/exam-purpose",
                                                    "code": "pre-departure",
                                                }
                                            ]
                                        },
                                    },
                                    {
                                        "code": {
                                            "coding": [{"system": statement, "code": "clinic-name"}]
                                        },
                                        "valueString": "Clinic TJ-DUS-0007",
                                    },
                                ],
                            },
                        },
                    ],
                },
            },
            "rid": shc.compute_rid(world.ctx.keystore.secret("rid"), active.kid, certificate.id),
        },
    }
    assert_nothing_clinical(payload)
    claims = shc.read_certificate(payload)
    assert (claims.certificate_id, claims.destination, claims.purpose) == (
        certificate.id,
        "KZ",
        "pre-departure",
    )


def test_no_card_names_a_test_result_or_diagnosis_for_any_example(world: World) -> None:
    world.clinic("KZ-ALA-0002", purposes=("in-host",))
    world.clinic("KG-BIS-0003")
    submissions = [
        submit(world),
        submit(world, number="2026-000002", outcomes={"hiv-screening": "positive"}),
        submit(world, number="2026-000003", outcomes={"igra": "positive", "hbsag": "positive"}),
        submit(world, example("valid-in-host.json"), clinic_id="KZ-ALA-0002"),
        submit(world, example("valid-return.json"), clinic_id="KG-BIS-0003"),
    ]
    issued = [c for s in submissions for c in certified(s).values()]
    assert len(issued) == 3 + 1 + 3
    for certificate in issued:
        assert_nothing_clinical(shc.decode_card(_download_card(world, certificate.id))[1])


_OUTCOME_CHOICES = {
    "chest-xray": st.sampled_from(["normal", "abnormal-tb", "abnormal-other"]),
    **{
        concept: st.sampled_from(["negative", "positive"])
        for concept in (
            "hiv-screening",
            "syphilis-nontreponemal",
            "hbsag",
            "hcv-ab",
            "leprosy-clinical",
            "drug-screening",
            "psychiatric-exam",
        )
    },
}
_NUMBERS = itertools.count(1)
_LETTERS = "абвгдеёжзийклмнопрстуфхцчшщыэюяқғҳҷӯӣңүөәі"
_NAMES = st.text(alphabet=_LETTERS, min_size=2, max_size=30).map(str.capitalize)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    outcomes=st.fixed_dictionaries(_OUTCOME_CHOICES),
    family=_NAMES,
    given_names=st.lists(_NAMES, min_size=1, max_size=3),
    patronymic=st.one_of(st.none(), _NAMES),
)
def test_no_generated_examination_puts_a_result_on_its_card(
    world: World,
    outcomes: dict[str, str],
    family: str,
    given_names: list[str],
    patronymic: str | None,
) -> None:
    bundle = with_name(
        examination_bundle(number=f"GEN-{next(_NUMBERS)}", outcomes=outcomes),
        family=family,
        given=given_names,
        patronymic=patronymic,
    )
    submission = submit(world, bundle)
    for certificate in certified(submission).values():
        token = _download_card(world, certificate.id)
        assert len(token) <= shc.MAX_SINGLE_QR_JWS
        assert_nothing_clinical(shc.decode_card(token)[1])


LONGEST_NAMES = [
    # Tajik double family name, given name and patronymic, Cyrillic
    ("Абдурахмонзода-Шарифова", ["Гулчехра"], "Абдукаххоровна"),
    # two family names, two given names and a patronymic, Cyrillic
    (
        "Нуриддинзода-Хушвахтова Мирзоабдуллоева",
        ["Мехрангезбону", "Сарвиноз"],
        "Абдурахмонзодаевна",
    ),
    # the Kyrgyz form with the patronymic suffix written out
    ("Абдыкадыров-Жээнбеков", ["Нурсултанбек", "Эркинбек"], "Абдыкадыр уулу"),
    # the longest name part the registry accepts (no form allows it): the card shortens it
    (
        "".join(random.Random(4).choices(_LETTERS, k=100)).capitalize(),
        ["".join(random.Random(5).choices(_LETTERS, k=60)).capitalize()],
        "".join(random.Random(6).choices(_LETTERS, k=60)).capitalize(),
    ),
]


@pytest.mark.parametrize(("family", "given_names", "patronymic"), LONGEST_NAMES)
def test_the_card_of_the_longest_names_fits_one_qr_code(
    world: World, family: str, given_names: list[str], patronymic: str
) -> None:
    bundle = with_name(
        examination_bundle(), family=family, given=given_names, patronymic=patronymic
    )
    certificate = certified(submit(world, bundle))["KZ"]
    token = _download_card(world, certificate.id)
    assert len(token) <= shc.MAX_SINGLE_QR_JWS
    code = qr_code(shc.qr_payload(token))
    assert isinstance(code.version, int) and code.version <= 22
    patient = shc.decode_card(token)[1]["vc"]["credentialSubject"]["fhirBundle"]["entry"][0]
    (name,) = patient["resource"]["name"]
    full_given = [*given_names, patronymic]
    if len(family) < 60:
        # a real name keeps its family name; later given names may shrink to initials
        assert name["family"] == family
        assert len(name["given"]) == len(full_given)
        for on_card, full in zip(name["given"], full_given, strict=True):
            assert on_card in (full, f"{full[0]}.")
    else:
        assert name["family"].endswith(shc.TRUNCATION_MARK)
        assert family.startswith(name["family"].removesuffix(shc.TRUNCATION_MARK))
    # the registry keeps the full name, sealed, for verification by certificate number
    with world.ctx.db.read_session() as session:
        stored = session.get(Certificate, certificate.id)
        assert stored is not None
        holder = certificates.certificate_holder(stored, cipher=world.ctx.cipher)
    assert (holder.family_name, holder.given_names) == (family, (*given_names, patronymic))
    assert family.encode() not in stored.sealed_holder


def test_the_latin_name_recorded_beside_the_cyrillic_one_is_the_one_on_the_card(
    world: World,
) -> None:
    submission = submit(world)
    token = _download_card(world, certified(submission)["RU"].id)
    patient = shc.decode_card(token)[1]["vc"]["credentialSubject"]["fhirBundle"]["entry"][0]
    assert patient["resource"]["name"] == [{"family": "Karimov", "given": ["Rustam", "Saidovich"]}]
