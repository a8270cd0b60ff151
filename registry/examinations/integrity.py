"""Stored bundles held to what was committed: each opens, and hashes to its recorded hash.

``registry log verify`` runs this beside the log check: the hash of every version is also
in its audit event, whose commitment is a leaf, so a bundle swapped, corrupted or replaced
with other content is found.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent
from registry.crypto.encryption import DataCipher
from registry.errors import StoredDataUnreadable
from registry.examinations.models import ExaminationVersion
from registry.examinations.sealed import open_bundle
from registry.examinations.signing import content_hash

BATCH = 500


def _committed_hashes(session: Session) -> dict[tuple[str, int], str]:
    """(examination, version) -> the bundle hash its audit event (and so the log) holds."""
    found: dict[tuple[str, int], str] = {}
    rows = session.execute(
        select(AuditEvent.object_id, AuditEvent.detail).where(
            AuditEvent.action.in_(("examination.create", "examination.update"))
        )
    )
    for examination_id, detail in rows:
        if examination_id and detail and "bundle_sha256" in detail:
            found[(examination_id, int(detail["version"]))] = str(detail["bundle_sha256"])
    return found


def check_bundles(session: Session, cipher: DataCipher) -> tuple[list[str], int]:
    """Problems found with stored bundles, and how many versions were checked."""
    committed = _committed_hashes(session)
    problems: list[str] = []
    checked, last = 0, 0
    while True:
        versions = session.scalars(
            select(ExaminationVersion)
            .where(ExaminationVersion.id > last)
            .order_by(ExaminationVersion.id)
            .limit(BATCH)
        ).all()
        if not versions:
            return problems, checked
        for version in versions:
            where = f"examination {version.examination_id} version {version.version}"
            last, checked = version.id, checked + 1
            try:
                raw = open_bundle(cipher, version)
            except StoredDataUnreadable:
                problems.append(f"{where}: the stored bundle does not open (swapped or corrupted)")
                continue
            if content_hash(json.loads(raw)) != version.bundle_sha256:
                problems.append(f"{where}: the stored bundle is not the one that was signed")
            logged = committed.get((version.examination_id, version.version))
            if logged is not None and logged != version.bundle_sha256:
                problems.append(f"{where}: its hash differs from the one the log committed to")
        session.expunge_all()
