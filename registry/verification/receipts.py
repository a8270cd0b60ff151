"""Verification receipts: the registry's signed answer, shown to people and checked again.

A receipt is the compact JWS the registry signs over a verification answer with its document
key (``service.sign_receipt``). This module reads one back from what a person brings: the
JWS itself, pasted, or a saved receipt page (an HTML file with the JWS inside). It says whether
the registry signed it and what it states. The statement is shown member by member as the
answer published it, so members added to answers later (a transparency-log leaf, say) are
carried without changing this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry.crypto import jws
from registry.crypto.keystore import KeyStore
from registry.jsonlimits import loads_strict

# A saved receipt page is small; anything much larger is not one of ours.
MAX_RECEIPT_BYTES = 256 * 1024
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{80,90}")


@dataclass(frozen=True)
class ReceiptCheck:
    """What a presented receipt turned out to be."""

    genuine: bool
    problem: str | None = None  # why it is not genuine, in English
    token: str | None = None
    kid: str | None = None
    statement: dict[str, Any] = field(default_factory=dict)

    @property
    def checked_at(self) -> datetime | None:
        """When the verification the receipt records was made."""
        value = self.statement.get("checked_at")
        try:
            return datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None


def find_token(text: str) -> str | None:
    """The receipt's compact JWS in pasted text or a saved receipt page, if there is one."""
    found = _COMPACT_JWS.findall(text or "")
    return max(found, key=len) if found else None


def check_receipt(text: str, *, keystore: KeyStore) -> ReceiptCheck:
    """Whether ``text`` holds a receipt signed by the registry's document key; its statement."""
    if len(text.encode("utf-8", errors="replace")) > MAX_RECEIPT_BYTES:
        return ReceiptCheck(False, "the file is larger than any receipt")
    token = find_token(text)
    if token is None:
        return ReceiptCheck(False, "no signed receipt was found in what was sent")
    try:
        kid = str(jws.read_header(token).get("kid"))
    except jws.JWSError as exc:
        return ReceiptCheck(False, f"the receipt cannot be read: {exc}", token=token)
    key = next((k for k in keystore.keys("document") if k.kid == kid), None)
    if key is None:
        return ReceiptCheck(
            False,
            f"the receipt is not signed with a key of this registry ({kid})",
            token=token,
            kid=kid,
        )
    try:
        payload = loads_strict(jws.verify(token, key.public_key))
    except ValueError as exc:  # JWSError, or a payload that is not strict JSON
        return ReceiptCheck(False, f"the signature does not verify: {exc}", token=token, kid=kid)
    if not isinstance(payload, dict) or "result" not in payload:
        return ReceiptCheck(
            False, "the signed document is not a verification answer", token=token, kid=kid
        )
    return ReceiptCheck(True, token=token, kid=kid, statement=payload)
