"""Rebuild the surveillance counts from the stored examinations, from scratch.

The counts are kept at write time; this is the repair and the proof: it reads every current
examination version (decrypting the bundle as signed), recomputes its tally and replaces all
counts in one transaction, so a failure leaves the old counts in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from registry.accreditation.models import Clinic
from registry.db import UnitOfWork
from registry.examinations.models import Examination, ExaminationVersion
from registry.examinations.sealed import open_bundle
from registry.fhir import parse_examination_bundle
from registry.referrals.queries import completed_by_examination
from registry.surveillance import service
from registry.surveillance.tally import tally_of


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild counted."""

    examinations: int
    microcells: int


def rebuild(
    uow: UnitOfWork,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Rebuilt:
    """Replace every count with one recomputed from the current examination versions."""
    cipher, settings = uow.cipher, uow.settings
    session = uow.session
    service.clear(session)
    clinics = {c.id: c.country for c in session.scalars(select(Clinic))}
    completed = completed_by_examination(session)
    current = (
        select(ExaminationVersion, Examination.clinic_id)
        .join(Examination, Examination.id == ExaminationVersion.examination_id)
        .where(
            Examination.status == "final",
            ExaminationVersion.version == Examination.current_version,
        )
        .order_by(ExaminationVersion.id)
    )
    total = session.scalar(
        select(func.count()).select_from(
            current.with_only_columns(ExaminationVersion.id).subquery()
        )
    )
    done = 0
    for version, clinic_id in session.execute(current.execution_options(yield_per=500)):
        record = parse_examination_bundle(
            open_bundle(cipher, version),
            max_depth=settings.max_json_depth,
            max_entries=settings.max_bundle_entries,
        )
        tally = tally_of(
            record,
            clinic_country=clinics[clinic_id],
            referrals_completed=completed.get(version.examination_id, 0),
        )
        service.count(session, cipher=cipher, version_id=version.id, tally=tally)
        done += 1
        if progress is not None and (done % 500 == 0 or done == total):
            progress(done, total or 0)
    return Rebuilt(examinations=done, microcells=len(service.counts(session)))
