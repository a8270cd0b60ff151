"""First fraud signals for accreditors, computed from examinations and their certificates.

- Divergent verdicts: the same person examined for the same destination at different clinics
  within a short window, with a certificate from one and none from the other.
- Outlier clinics: a clinic whose share of examinations ending in a certificate ("fit")
  departs from its peers' (the other clinics of its country) by a two-proportion z-score.

Signals are leads for an inspection, never findings: a person can fall ill between two
examinations, and a clinic serving a healthier population has a higher fit rate.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise

from sqlalchemy import and_, select

from registry.accreditation.models import Clinic
from registry.audit.service import record as audit
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.certificates.models import Certificate
from registry.crypto.encryption import blind_index
from registry.db import UnitOfWork, utcnow
from registry.errors import BadRequest
from registry.examinations.models import Examination, ExaminationVersion


@dataclass(frozen=True)
class Examined:
    """One examination as a signal shows it: no person, no result."""

    id: str
    clinic_id: str
    clinic_country: str
    examination_date: date
    purpose: str
    destination: str
    verdict: str  # fit | no-certificate


@dataclass(frozen=True)
class DivergentVerdicts:
    person_ref: str  # a pseudonym, stable across listings, not the registry's person id
    destination: str
    days_apart: int
    examinations: tuple[Examined, Examined]


@dataclass(frozen=True)
class OutlierClinic:
    clinic_id: str
    country: str
    examinations: int
    fit: int
    fit_rate: float
    peer_examinations: int
    peer_fit_rate: float
    z: float
    direction: str  # higher | lower


@dataclass(frozen=True)
class Signals:
    country: str | None
    since: date
    until: date
    window_days: int
    z_threshold: float
    min_examinations: int
    divergent_verdicts: list[DivergentVerdicts]
    outlier_clinics: list[OutlierClinic]
    generated_at: datetime


def _examined(uow: UnitOfWork, since: date, until: date) -> list[tuple[str, Examined]]:
    """(person id, examination) of every standing examination with a destination in the period."""
    session = uow.session
    rows = session.execute(
        select(Examination, ExaminationVersion.id)
        .join(
            ExaminationVersion,
            and_(
                ExaminationVersion.examination_id == Examination.id,
                ExaminationVersion.version == Examination.current_version,
            ),
        )
        .where(
            Examination.status != "entered-in-error",
            Examination.destination.is_not(None),
            Examination.examination_date >= since,
            Examination.examination_date <= until,
        )
        .order_by(Examination.examination_date, Examination.created_at, Examination.id)
    ).all()
    versions = [version_id for _examination, version_id in rows]
    certified = {
        (version_id, destination)
        for version_id, destination in session.execute(
            select(Certificate.version_id, Certificate.destination).where(
                Certificate.version_id.in_(versions)
            )
        )
    }
    return [
        (
            examination.person_id,
            Examined(
                id=examination.id,
                clinic_id=examination.clinic_id,
                clinic_country=examination.origin,
                examination_date=examination.examination_date,
                purpose=examination.purpose,
                destination=str(examination.destination),
                verdict="fit"
                if (version_id, examination.destination) in certified
                else "no-certificate",
            ),
        )
        for examination, version_id in rows
    ]


def _divergent(
    examined: list[tuple[str, Examined]], *, window_days: int, country: str | None, key: bytes
) -> list[DivergentVerdicts]:
    by_person: dict[tuple[str, str], list[Examined]] = defaultdict(list)
    for person_id, item in examined:
        by_person[(person_id, item.destination)].append(item)
    signals = []
    for (person_id, destination), items in sorted(by_person.items()):
        for earlier, later in pairwise(items):
            days = (later.examination_date - earlier.examination_date).days
            if (
                days <= window_days
                and earlier.clinic_id != later.clinic_id
                and earlier.verdict != later.verdict
                and country in (None, earlier.clinic_country, later.clinic_country)
            ):
                signals.append(
                    DivergentVerdicts(
                        person_ref=blind_index(key, "fraud-person", person_id)[:16],
                        destination=destination,
                        days_apart=days,
                        examinations=(earlier, later),
                    )
                )
    # the latest first
    return sorted(
        signals,
        key=lambda s: (-s.examinations[1].examination_date.toordinal(), s.examinations[1].id),
    )


def _outliers(
    examined: list[tuple[str, Examined]],
    *,
    country: str | None,
    min_examinations: int,
    z_threshold: float,
) -> list[OutlierClinic]:
    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # clinic -> [examined, fit]
    countries: dict[str, str] = {}
    for _person, item in examined:
        tallies[item.clinic_id][0] += 1
        tallies[item.clinic_id][1] += item.verdict == "fit"
        countries[item.clinic_id] = item.clinic_country
    outliers = []
    for clinic_id, (n, fit) in sorted(tallies.items()):
        home = countries[clinic_id]
        if n < min_examinations or country not in (None, home):
            continue
        peers = [t for c, t in tallies.items() if c != clinic_id and countries[c] == home]
        peer_n = sum(t[0] for t in peers)
        peer_fit = sum(t[1] for t in peers)
        if peer_n < min_examinations:
            continue  # no peers to compare with
        pooled = (fit + peer_fit) / (n + peer_n)
        spread = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / peer_n))
        if spread == 0:
            continue  # everyone fit, or nobody: no departure
        z = (fit / n - peer_fit / peer_n) / spread
        if abs(z) >= z_threshold:
            outliers.append(
                OutlierClinic(
                    clinic_id=clinic_id,
                    country=home,
                    examinations=n,
                    fit=fit,
                    fit_rate=round(fit / n, 4),
                    peer_examinations=peer_n,
                    peer_fit_rate=round(peer_fit / peer_n, 4),
                    z=round(z, 2),
                    direction="higher" if z > 0 else "lower",
                )
            )
    return sorted(outliers, key=lambda o: -abs(o.z))


def fraud_signals(
    uow: UnitOfWork,
    *,
    principal: Principal,
    country: str | None = None,
    since: date | None = None,
    until: date | None = None,
    window_days: int = 30,
    min_examinations: int = 20,
    z_threshold: float = 3.0,
    now: datetime | None = None,
) -> Signals:
    """The signals for the clinics of one country (an accreditor's own), or all (admin)."""
    index_key = uow.index_key
    authorize(principal, "fraud.read")
    if principal.role != "admin":
        country = country or principal.country
    authorize(principal, "fraud.read", countries=(country,) if country else ())
    now = now or utcnow()
    until = until or now.date()
    since = since or until - timedelta(days=90)
    if since > until:
        raise BadRequest("since must not be after until")
    if (until - since).days > 3 * 366:
        raise BadRequest("ask for at most three years at a time")
    session = uow.session
    if (
        country is not None
        and not session.scalars(select(Clinic.id).where(Clinic.country == country).limit(1)).first()
    ):
        examined: list[tuple[str, Examined]] = []
    else:
        # examinations just before the period still pair with those in it
        examined = _examined(uow, since - timedelta(days=window_days), until)
    in_period = [(p, e) for p, e in examined if e.examination_date >= since]
    signals = Signals(
        country=country,
        since=since,
        until=until,
        window_days=window_days,
        z_threshold=z_threshold,
        min_examinations=min_examinations,
        divergent_verdicts=[
            s
            for s in _divergent(examined, window_days=window_days, country=country, key=index_key)
            if s.examinations[1].examination_date >= since
        ],
        outlier_clinics=_outliers(
            in_period,
            country=country,
            min_examinations=min_examinations,
            z_threshold=z_threshold,
        ),
        generated_at=now,
    )
    audit(
        session,
        actor=principal,
        action="fraud.read",
        object_type="Jurisdiction",
        object_id=country,
        purpose_of_use="accreditation-oversight",
        detail={
            "since": since.isoformat(),
            "until": until.isoformat(),
            "divergent_verdicts": len(signals.divergent_verdicts),
            "outlier_clinics": len(signals.outlier_clinics),
        },
        at=now,
    )
    return signals
