"""Demo data for ``make run``: clinics in the countries of origin and Kazakhstan, keys, clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from registry.accreditation import service as accreditation
from registry.accreditation.models import Clinic
from registry.auth import service as auth
from registry.auth.models import Client
from registry.auth.principal import ROLE_SCOPES, Principal
from registry.certificates.holders import holder_secret, recovery_code
from registry.crypto.keys import (
    generate_key,
    load_private_jwk,
    private_jwk,
    read_jwk_file,
    thumbprint,
    write_private_file,
)
from registry.db import utcnow
from registry.examinations import service as examinations
from registry.examinations.examples import Migrant, examination_bundle
from registry.examinations.service import Submission
from registry.examinations.signing import sign_bundle
from registry.web import RegistryContext


@dataclass(frozen=True)
class DemoClinic:
    id: str
    name: str
    city: str
    purposes: tuple[str, ...]
    custody: str


CLINICS = (
    DemoClinic(
        "KG-BIS-0001",
        "Bishkek City Centre for Migrant Health",
        "Bishkek",
        ("pre-departure", "return"),
        "custodial",
    ),
    DemoClinic(
        "KG-OSH-0002",
        "Osh Regional Medical Examination Centre",
        "Osh",
        ("pre-departure", "return"),
        "custodial",
    ),
    DemoClinic(
        "TJ-DUS-0007",
        "Dushanbe Medical Examination Centre No. 7",
        "Dushanbe",
        ("pre-departure", "return"),
        "clinic-held",
    ),
    DemoClinic(
        "TJ-KHU-0003",
        "Khujand Migrant Health Clinic",
        "Khujand",
        ("pre-departure", "return"),
        "custodial",
    ),
    DemoClinic(
        "TJ-AID-0001",
        "Republican Centre for AIDS Prevention and Control",
        "Dushanbe",
        ("return",),
        "custodial",
    ),
    DemoClinic(
        "UZ-TAS-0003",
        "Tashkent Labour Migration Medical Centre",
        "Tashkent",
        ("pre-departure", "return"),
        "custodial",
    ),
    DemoClinic(
        "UZ-SAM-0004",
        "Samarkand Pre-departure Examination Point",
        "Samarkand",
        ("pre-departure",),
        "custodial",
    ),
    DemoClinic(
        "KZ-ALA-0002",
        "Almaty City Polyclinic No. 2",
        "Almaty",
        ("in-host", "periodic"),
        "custodial",
    ),
)

# (client id, name, role, clinic, country)
CLIENTS = (
    (
        "demo-clinic-tj-dus-0007",
        "Dushanbe MEC No. 7 system",
        "clinic",
        "TJ-DUS-0007",
        None,
    ),
    ("demo-clinic-kg-bis-0001", "Bishkek CMH clinical system", "clinic", "KG-BIS-0001", None),
    ("demo-clinic-tj-aid-0001", "Republican AIDS Centre system", "clinic", "TJ-AID-0001", None),
    ("demo-clinic-kz-ala-0002", "Almaty Polyclinic No. 2 system", "clinic", "KZ-ALA-0002", None),
    ("demo-employer-almaty-build", "Almaty Construction LLP (HR)", "employer", None, None),
    ("demo-authority-kz", "Migration Service of Kazakhstan", "authority", None, "KZ"),
    (
        "demo-ministry-tj",
        "Ministry of Health and Social Protection of Tajikistan",
        "ministry",
        None,
        "TJ",
    ),
    (
        "demo-accreditor-tj",
        "Tajik accreditation body for medical examinations",
        "accreditor",
        None,
        "TJ",
    ),
    ("demo-admin", "Registry operator", "admin", None, None),
)


MIGRANTS = (
    Migrant(
        ("Karimov", "Каримов"),
        ("Rustam", "Рустам"),
        ("Saidovich", "Саидович"),
        "male",
        date(1991, 3, 14),
        "401234567",
        "TJ",
    ),
    Migrant(
        ("Nazarova", "Назарова"),
        ("Dilnoza", "Дилноза"),
        ("Rahimovna", "Рахимовна"),
        "female",
        date(1996, 7, 2),
        "402118834",
        "TJ",
    ),
    Migrant(
        ("Sharipov", "Шарипов"),
        ("Farhod", "Фарход"),
        ("Umarovich", "Умарович"),
        "male",
        date(1988, 11, 23),
        "400987112",
        "TJ",
    ),
    Migrant(
        ("Abdurakhmonzoda", "Абдурахмонзода"),
        ("Jamshed", "Джамшед"),
        None,
        "male",
        date(1999, 1, 5),
        "403550021",
        "TJ",
    ),
    Migrant(
        ("Toktogulov", "Токтогулов"),
        ("Azamat", "Азамат"),
        ("Bakytovich", "Бакытович"),
        "male",
        date(1993, 5, 30),
        "AC1234567",
        "KG",
    ),
    Migrant(
        ("Asanova", "Асанова"),
        ("Aigerim", "Айгерим"),
        ("Nurlanovna", "Нурлановна"),
        "female",
        date(1990, 9, 17),
        "AC7654321",
        "KG",
    ),
    Migrant(
        ("Mamatov", "Маматов"),
        ("Ulan", "Улан"),
        ("Sadyrovich", "Садырович"),
        "male",
        date(1985, 2, 11),
        "AN0099887",
        "KG",
    ),
)

# (migrant index, clinic, destination, days ago, outcomes): mostly fit; one HIV-reactive
# screening (meets Kazakhstan's rules, not Russia's); one chest X-ray suggestive of TB (no
# certificate anywhere, a referral instead).
EXAMINATIONS: tuple[tuple[int, str, str, int, dict[str, str]], ...] = (
    (0, "TJ-DUS-0007", "KZ", 5, {}),
    (1, "TJ-DUS-0007", "RU", 12, {}),
    (2, "TJ-DUS-0007", "KZ", 20, {"hiv-screening": "positive"}),
    (3, "TJ-DUS-0007", "RU", 3, {"chest-xray": "abnormal-tb"}),
    (4, "KG-BIS-0001", "KZ", 8, {}),
    (5, "KG-BIS-0001", "KZ", 30, {}),
    (6, "KG-BIS-0001", "RU", 2, {"syphilis-nontreponemal": "positive"}),
)


def _clinic_principal(clinic_id: str) -> Principal:
    return Principal(
        client_id=f"demo-clinic-{clinic_id.lower()}",
        role="clinic",
        name=f"{clinic_id} clinical system",
        scopes=ROLE_SCOPES["clinic"],
        clinic_id=clinic_id,
        country=clinic_id[:2],
    )


def _submit(ctx: RegistryContext, clinic_id: str, bundle: dict[str, Any]) -> Submission:
    """Submit as the clinic would: TJ-DUS-0007 signs with its own key, the others custodially."""
    clinic_key_file = ctx.settings.keys_dir / "demo" / "clinic-keys" / "TJ-DUS-0007.jwk.json"
    if clinic_id == "TJ-DUS-0007" and clinic_key_file.exists():
        clinic_key = read_jwk_file(clinic_key_file)
        bundle = sign_bundle(
            bundle, load_private_jwk(clinic_key), kid=str(clinic_key["kid"]), when=utcnow()
        )
    with ctx.db.unit_of_work() as uow:
        submission = examinations.submit(
            uow,
            principal=_clinic_principal(clinic_id),
            bundle_json=json.dumps(bundle, ensure_ascii=False).encode(),
        )
        uow.commit()
    return submission


DAUGHTER = Migrant(
    ("Karimova", "Каримова"),
    ("Madina", "Мадина"),
    ("Rustamovna", "Рустамовна"),
    "female",
    date(2016, 5, 10),
    "ITJ0123456",
    "TJ",
)


def load_continuity(ctx: RegistryContext) -> Iterator[str]:
    """A return examination with a renewed passport and an HIV referral; a dependant child."""
    today = utcnow().date()
    sharipov = MIGRANTS[2]  # HIV-reactive on screening before departure (DEMO-0003)
    back = examination_bundle(
        clinic_id="TJ-KHU-0003",
        number="DEMO-RETURN-0001",
        migrant=sharipov,
        purpose="return",
        examined_on=today - timedelta(days=3),
        outcomes={"hiv-screening": "positive"},
        documents=[("passport", "TJ", sharipov.passport), ("passport", "TJ", "405000118")],
        referrals=[("hiv-reactive", "TJ-AID-0001")],
    )
    submission = _submit(ctx, "TJ-KHU-0003", back)
    if submission.created:
        yield (
            f"return examination {submission.examination.id} (TJ-KHU-0003, old and new "
            f"passport): linked to {submission.examination.previous_examination_id}; an HIV "
            "referral to TJ-AID-0001 (GET /api/v1/referrals as demo-clinic-tj-aid-0001)"
        )
    child = examination_bundle(
        clinic_id="TJ-KHU-0003",
        number="DEMO-CHILD-0001",
        migrant=DAUGHTER,
        destination="KZ",
        examined_on=today - timedelta(days=4),
        documents=[("birth-certificate", "TJ", DAUGHTER.passport)],
        worker=MIGRANTS[0],
        relationship="FTH",
    )
    submission = _submit(ctx, "TJ-KHU-0003", child)
    if submission.created:
        issued = [a.certificate.id for a in submission.assessments if a.certificate]
        yield (
            f"dependant child examination {submission.examination.id} (TJ-KHU-0003 → KZ, with "
            f"her father): certificates {', '.join(issued) or 'none'}; born "
            f"{DAUGHTER.birth_date.isoformat()}"
        )


def load_examinations(ctx: RegistryContext) -> Iterator[str]:
    """Submit the demo examinations as their clinics would (signed or custodial)."""
    today = utcnow().date()
    for number, (who, clinic_id, destination, days_ago, outcomes) in enumerate(EXAMINATIONS):
        bundle = examination_bundle(
            clinic_id=clinic_id,
            number=f"DEMO-{number + 1:04d}",
            migrant=MIGRANTS[who],
            destination=destination,
            examined_on=today - timedelta(days=days_ago),
            outcomes=outcomes,
        )
        submission = _submit(ctx, clinic_id, bundle)
        if not submission.created:
            continue
        issued = [a.certificate.id for a in submission.assessments if a.certificate]
        line = (
            f"examination {submission.examination.id} ({clinic_id} → {destination}): "
            f"born {MIGRANTS[who].birth_date.isoformat()}; "
            f"certificates {', '.join(issued) or 'none'}"
        )
        if issued:
            # a holder page opens only certificates: an examination without one has none
            link = holder_secret(ctx.keystore, examination_id=submission.examination.id)
            code = recovery_code(ctx.keystore, examination_id=submission.examination.id)
            line += (
                f"; holder page {ctx.settings.base_url}/h/{link} (recovery code {code}, "
                f"or the slip /api/v1/certificates/{issued[0]}/holder-slip.pdf?h={link})"
            )
        yield line


def load_surveillance_history(ctx: RegistryContext) -> Iterator[str]:
    """Synthetic surveillance counts for last year and this year's closed months (demo only)."""
    from registry.surveillance.service import (
        add_microcells,
        closed_through,
        counts,
        protect_outstanding,
    )
    from registry.surveillance.synthetic import population

    last = closed_through(utcnow())
    first_year = last.year - 1
    with ctx.db.unit_of_work() as uow:
        if counts(uow.session, year=first_year):
            return
        for year, months in ((first_year, 12), (last.year, last.index)):
            add_microcells(uow.session, population(year, year=year, months=months, per_month=8_000))
        uow.commit()
    # what the surveillance worker does after new data, done ahead so the dashboard answers
    for done in protect_outstanding(ctx.db, now=utcnow()):
        yield f"surveillance: {done.year} protected at k={done.k} ({done.seconds:.0f} s)"
    yield (
        f"surveillance: synthetic counts for {first_year}-01 to {last.label} (demo only: no "
        "examinations behind them; `registry surveillance rebuild` replaces them with the real "
        f"counts); dashboard {ctx.settings.base_url}/surveillance with "
        f"{ctx.settings.keys_dir / 'demo' / 'clients' / 'demo-ministry-tj.jwk.json'}"
    )


def load_demo(ctx: RegistryContext, *, principal: Principal) -> Iterator[str]:
    """Create the demo clinics, keys and clients that are missing; yield what was done."""
    demo_dir = ctx.settings.keys_dir / "demo"
    today = utcnow().date()
    with ctx.db.unit_of_work() as uow:
        for spec in CLINICS:
            if uow.session.get(Clinic, spec.id) is not None:
                continue
            accreditation.add_clinic(
                uow,
                principal=principal,
                clinic_id=spec.id,
                name=spec.name,
                country=spec.id[:2],
                city=spec.city,
                purposes=spec.purposes,
                accredited_from=date(today.year - 1, 1, 1),
                accredited_until=date(today.year + 2, 12, 31),
            )
            _key, secret = accreditation.generate_clinic_key(
                uow,
                principal=principal,
                clinic_id=spec.id,
                custody=spec.custody,
            )
            if secret is not None:
                path = demo_dir / "clinic-keys" / f"{spec.id}.jwk.json"
                write_private_file(path, json.dumps(secret, indent=2).encode())
                yield f"clinic {spec.id}: clinic-held signing key written to {path}"
            else:
                yield f"clinic {spec.id}: custodial signing key sealed in the database"
        suspended = uow.session.get(Clinic, "UZ-SAM-0004")
        if suspended is not None and suspended.status == "active":
            accreditation.change_clinic_status(
                uow,
                principal=principal,
                clinic_id="UZ-SAM-0004",
                status="suspended",
                reason="Demo: inspection found certificates issued without X-ray films",
                effective_at=utcnow() - timedelta(days=3),
            )
            yield "clinic UZ-SAM-0004: suspended (demo of a suspended clinic)"
        for client_id, name, role, clinic_id, country in CLIENTS:
            if uow.session.get(Client, client_id) is not None:
                continue
            secret = private_jwk(generate_key())
            secret["kid"] = thumbprint(secret)
            auth.add_client(
                uow,
                actor=principal,
                name=name,
                role=role,
                clinic_id=clinic_id,
                country=country,
                client_id=client_id,
                jwk={k: v for k, v in secret.items() if k != "d"},
            )
            path = demo_dir / "clients" / f"{client_id}.jwk.json"
            write_private_file(path, json.dumps({**secret, "client_id": client_id}).encode())
            yield f"client {client_id} ({role}): private key at {path}"
        uow.commit()
    yield from load_examinations(ctx)
    yield from load_continuity(ctx)
    yield from load_surveillance_history(ctx)
    yield (
        f"check a certificate at {ctx.settings.base_url}/verify with a certificate number "
        "and the birth date printed beside it above, or scan its QR code from the holder page"
    )
