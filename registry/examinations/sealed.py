"""Stored bundles and test outcomes, sealed with the data cipher and bound to where they belong.

A leaf module: the examination service seals, and whoever may read a bundle or an outcome
(surveillance rebuilding its counts, the authority view) opens it here, not through the service.
"""

from __future__ import annotations

from registry.crypto.encryption import DataCipher, DecryptionError
from registry.errors import StoredDataUnreadable
from registry.examinations.models import ExaminationVersion, TestResult


def bundle_context(examination_id: str, version: int) -> bytes:
    """What a stored bundle is bound to: its examination and version."""
    return f"examination:{examination_id}:{version}".encode()


def outcome_context(examination_id: str, version: int, concept: str) -> bytes:
    """What a stored outcome is bound to: its examination, version and test."""
    return f"result:{examination_id}:{version}:{concept}".encode()


def seal_bundle(cipher: DataCipher, examination_id: str, version: int, raw: bytes) -> bytes:
    """The bundle exactly as signed, encrypted for its examination version."""
    return cipher.encrypt(raw, context=bundle_context(examination_id, version))


def open_bundle(cipher: DataCipher, version: ExaminationVersion) -> bytes:
    """The bundle exactly as signed, decrypted; StoredDataUnreadable when it does not open."""
    context = bundle_context(version.examination_id, version.version)
    try:
        return cipher.decrypt(version.sealed_bundle, context=context)
    except DecryptionError as exc:
        raise _unreadable(version, "bundle") from exc


def seal_outcome(
    cipher: DataCipher, examination_id: str, version: int, concept: str, outcome: str
) -> bytes:
    """A test result's outcome, encrypted for its examination version and test."""
    return cipher.encrypt(
        outcome.encode(), context=outcome_context(examination_id, version, concept)
    )


def open_outcome(cipher: DataCipher, result: TestResult) -> str:
    """A test result's outcome, decrypted; StoredDataUnreadable when it does not open."""
    version = result.version
    context = outcome_context(version.examination_id, version.version, result.concept)
    try:
        return cipher.decrypt(result.sealed_outcome, context=context).decode()
    except DecryptionError as exc:
        raise _unreadable(version, "result") from exc


def _unreadable(version: ExaminationVersion, part: str) -> StoredDataUnreadable:
    return StoredDataUnreadable(
        f"the stored {part} of examination {version.examination_id} version "
        f"{version.version} failed its integrity check; nothing can be read from it until the "
        "registry's operator restores it",
        object_type="Examination",
        object_id=version.examination_id,
        version=version.version,
    )
