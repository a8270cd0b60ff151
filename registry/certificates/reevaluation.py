"""Judging certificates already issued by a ruleset version that declares ``applies_to_issued``.

Publishing such a version (``registry init``) only queues a job; the rulesets worker (or
``registry rulesets reevaluate``) works it off in the background, one batch of certificates
per transaction, in certificate id order. A batch's revocations and the job's position are
committed together, so a job stopped anywhere (a crash, SIGTERM, a failed batch) resumes after
its last whole batch, and running it again judges nothing twice. A job waits until its version
is in force: rules not yet binding revoke nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, func, select, update

from registry.audit.service import Actor, record
from registry.certificates import catalogue
from registry.certificates.holders import open_holder
from registry.certificates.models import Certificate, RulesetReevaluation
from registry.certificates.revocation import revoke_as_ruleset_changed
from registry.certificates.rulesets import RULESET_NOT_IN_FORCE, Ruleset, evaluate
from registry.db import UnitOfWork
from registry.errors import Conflict
from registry.examinations.models import ExaminationVersion
from registry.examinations.sealed import open_outcome

DEFAULT_BATCH = 200


@dataclass(frozen=True)
class Progress:
    """Where one job stands after a batch: certificates judged of those to judge, revoked."""

    destination: str
    version: int
    judged: int
    total: int
    revoked: int
    revoked_now: tuple[str, ...]
    done: bool

    def describe(self) -> str:
        """One line for an operator."""
        state = "done" if self.done else "under way"
        return (
            f"{self.destination}.v{self.version}: {self.judged}/{self.total} certificates "
            f"judged, {self.revoked} revoked as ruleset-changed ({state})"
        )


@dataclass(frozen=True)
class _StoredResult:
    concept: str
    outcome: str
    effective: date


def queue(uow: UnitOfWork, *, now: datetime) -> list[RulesetReevaluation]:
    """A pending job for every published version that applies to issued certificates and has
    none yet; returns the jobs added (idempotent)."""
    session = uow.session
    known = {
        (destination, version)
        for destination, version in session.execute(
            select(RulesetReevaluation.destination, RulesetReevaluation.version)
        )
    }
    added = []
    for ruleset in catalogue.rulesets(session):
        if not ruleset.applies_to_issued or (ruleset.destination, ruleset.version) in known:
            continue
        job = RulesetReevaluation(
            destination=ruleset.destination,
            version=ruleset.version,
            state="pending",
            not_before=ruleset.effective_from,
            total=0,
            judged=0,
            revoked=0,
            created_at=now,
            updated_at=now,
        )
        session.add(job)
        added.append(job)
    session.flush()
    return added


def outstanding(uow: UnitOfWork) -> list[RulesetReevaluation]:
    """Jobs not done yet, in the order they are worked: destination, then version."""
    return list(
        uow.session.scalars(
            select(RulesetReevaluation)
            .where(RulesetReevaluation.state != "done")
            .order_by(RulesetReevaluation.destination, RulesetReevaluation.version)
        )
    )


def _issued_before(ruleset: Ruleset, today: date) -> tuple[ColumnElement[bool], ...]:
    """The certificates a version judges: valid, of its destination, issued under an earlier
    version, not expired."""
    return (
        Certificate.destination == ruleset.destination,
        Certificate.status == "valid",
        Certificate.ruleset_version < ruleset.version,
        Certificate.valid_until >= today,
    )


def _ruleset(uow: UnitOfWork, job: RulesetReevaluation) -> Ruleset:
    for ruleset in catalogue.rulesets(uow.session):
        if (ruleset.destination, ruleset.version) == (job.destination, job.version):
            return ruleset
    raise LookupError(f"{job.destination} version {job.version} is not published")


def _failed(uow: UnitOfWork, certificate: Certificate, ruleset: Ruleset, today: date) -> set[str]:
    """The reason codes the certificate's examination fails under ``ruleset`` (none: still met).

    The examination is judged by the new rules whatever its date: that the version was not in
    force on the examination day is no reason to revoke.
    """
    cipher = uow.cipher
    version = uow.session.get(ExaminationVersion, certificate.version_id)
    assert version is not None
    holder = open_holder(certificate.sealed_holder, cipher, certificate_id=certificate.id)
    verdict = evaluate(
        ruleset,
        purpose=version.purpose,
        results=[
            _StoredResult(result.concept, open_outcome(cipher, result), result.effective)
            for result in version.results
        ],
        examination_date=version.examination_date,
        birth_date=holder.birth_date,
        today=today,
    )
    return {r.code for r in verdict.reasons if r.code != RULESET_NOT_IN_FORCE}


def work_batch(
    uow: UnitOfWork, *, actor: Actor, now: datetime, batch: int = DEFAULT_BATCH
) -> Progress | None:
    """Judge the next batch of the first outstanding job that may run today; None when none may.

    The caller commits: the revocations and the job's new position go in one transaction.
    """
    session, today = uow.session, now.date()
    job = next((j for j in outstanding(uow) if j.not_before <= today), None)
    if job is None:
        return None
    ruleset = _ruleset(uow, job)
    where = _issued_before(ruleset, today)
    if job.state == "pending":
        job.state = "running"
        job.started_at = now
        job.total = session.scalar(select(func.count()).select_from(Certificate).where(*where)) or 0
    query = select(Certificate).where(*where).order_by(Certificate.id).limit(batch)
    if job.after is not None:
        query = query.where(Certificate.id > job.after)
    certificates = list(session.scalars(query))
    # Claim the batch first: a second worker on the same job finds the position moved and
    # judges nothing (on PostgreSQL it waits for this transaction, then matches no row).
    last = certificates[-1].id if certificates else job.after
    claimed = session.execute(
        update(RulesetReevaluation)
        .where(
            RulesetReevaluation.id == job.id,
            RulesetReevaluation.after.is_(None)
            if job.after is None
            else RulesetReevaluation.after == job.after,
            RulesetReevaluation.state != "done",
        )
        .values(after=last, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"{job.destination}.v{job.version} is being judged by another worker")
    revoked = []
    for certificate in certificates:
        failed = _failed(uow, certificate, ruleset, today)
        if failed:
            revoke_as_ruleset_changed(
                uow, certificate, ruleset=ruleset, failed=failed, actor=actor, now=now
            )
            revoked.append(certificate.id)
    job.after = last
    job.judged += len(certificates)
    job.revoked += len(revoked)
    job.total = max(job.total, job.judged)
    job.updated_at = now
    if len(certificates) < batch:
        job.state = "done"
        job.finished_at = now
        record(
            session,
            actor=actor,
            action="ruleset.reevaluate",
            object_type="Ruleset",
            object_id=f"{job.destination}.v{job.version}",
            detail={"judged": job.judged, "revoked": job.revoked},
            at=now,
        )
    session.flush()
    return Progress(
        destination=job.destination,
        version=job.version,
        judged=job.judged,
        total=job.total,
        revoked=job.revoked,
        revoked_now=tuple(revoked),
        done=job.state == "done",
    )


def waiting(uow: UnitOfWork, *, today: date) -> list[RulesetReevaluation]:
    """Outstanding jobs whose version is not in force yet."""
    return [j for j in outstanding(uow) if j.not_before > today]
