"""Test helpers shared by every capability's tests: API clients, tokens, a world builder."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jwt
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from registry.auth.principal import ROLE_SCOPES, Principal
from registry.crypto.keys import PrivateKey, generate_key, private_jwk, thumbprint
from registry.web import RegistryContext

BASE_URL = "http://registry.test"


@contextmanager
def throwaway_postgres(server: str, name: str) -> Iterator[str]:
    """A database of its own, ``name``, on the PostgreSQL server ``server`` names; dropped after.

    Raises (before yielding) when the server cannot be reached.
    """
    admin = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


OPERATOR = Principal(
    client_id="test-operator", role="admin", name="test operator", scopes=ROLE_SCOPES["admin"]
)


@dataclass
class ApiClient:
    """A registered API client and its private key, able to sign assertions."""

    id: str
    role: str
    key: PrivateKey
    kid: str

    def assertion(
        self,
        *,
        aud: str = f"{BASE_URL}/oauth/token",
        lifetime: int = 60,
        jti: str | None = None,
        **changes: Any,
    ) -> str:
        now = datetime.now(UTC)
        claims = {
            "iss": self.id,
            "sub": self.id,
            "aud": aud,
            "exp": int((now + timedelta(seconds=lifetime)).timestamp()),
            "jti": jti or uuid.uuid4().hex,
        }
        claims.update(changes)
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})


def token_form(assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        **extra,
    }


class World:
    """Builds clinics and clients through the services, and hands out access tokens."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.ctx: RegistryContext = app.extensions["registry"]
        self.http = app.test_client()

    def clinic(
        self,
        clinic_id: str = "TJ-DUS-0007",
        *,
        name: str | None = None,
        purposes: tuple[str, ...] = ("pre-departure", "return"),
        accredited_from: date = date(2020, 1, 1),
        custody: str = "custodial",
    ) -> str:
        from registry.accreditation import service

        with self.ctx.db.unit_of_work() as uow:
            service.add_clinic(
                uow,
                principal=OPERATOR,
                clinic_id=clinic_id,
                name=name or f"Clinic {clinic_id}",
                country=clinic_id[:2],
                purposes=purposes,
                accredited_from=accredited_from,
            )
            service.generate_clinic_key(
                uow,
                principal=OPERATOR,
                clinic_id=clinic_id,
                custody=custody,
            )
            uow.commit()
        return clinic_id

    def api_client(
        self,
        role: str,
        *,
        clinic_id: str | None = None,
        country: str | None = None,
        client_id: str | None = None,
    ) -> ApiClient:
        from registry.auth import service

        key = generate_key()
        jwk = private_jwk(key)
        kid = thumbprint(jwk)
        public = {k: v for k, v in jwk.items() if k != "d"} | {"kid": kid}
        with self.ctx.db.unit_of_work() as uow:
            added = service.add_client(
                uow,
                actor=OPERATOR,
                name=f"{role} test client",
                role=role,
                jwk=public,
                clinic_id=clinic_id,
                country=country,
                client_id=client_id,
            )
            uow.commit()
            return ApiClient(id=added.id, role=role, key=key, kid=kid)

    def token(self, api_client: ApiClient, scope: str | None = None) -> str:
        form = token_form(api_client.assertion())
        if scope:
            form["scope"] = scope
        response = self.http.post("/oauth/token", data=form)
        assert response.status_code == 200, response.json
        return str(response.json["access_token"])

    def bearer(self, role: str, **kwargs: Any) -> dict[str, str]:
        """Authorization headers for a fresh client of ``role``."""
        return {"Authorization": f"Bearer {self.token(self.api_client(role, **kwargs))}"}

    def clinic_held_key(self, clinic_id: str) -> tuple[str, PrivateKey]:
        """Register a clinic-held key; return its kid and the private key the clinic keeps."""
        from registry.accreditation import service
        from registry.crypto.keys import load_private_jwk

        with self.ctx.db.unit_of_work() as uow:
            key, secret = service.generate_clinic_key(
                uow,
                principal=OPERATOR,
                clinic_id=clinic_id,
                custody="clinic-held",
            )
            uow.commit()
        assert secret is not None
        return key.kid, load_private_jwk(secret)
