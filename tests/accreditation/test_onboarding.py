"""A clinic onboarded end to end through the API with an accreditor's token, without the shell.

The clinic makes its key pairs itself (``registry clinic keygen`` on its own machine); the
accreditor registers the clinic, its public signing key and its API client; the clinic then
signs in with its client key and submits an examination signed with its own key.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.auth.models import Client
from registry.cli import main
from registry.crypto.keys import load_private_jwk
from tests.bundles import body, examination_bundle, signed
from tests.support import ApiClient, World, token_form


def _keygen(tmp_path: Path, name: str) -> tuple[dict[str, str], dict[str, str]]:
    """Run the clinic-side command; the private JWK from its file, the public from its output."""
    out = tmp_path / f"{name}.jwk.json"
    result = CliRunner().invoke(main, ["clinic", "keygen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    public = json.loads(result.stdout)
    assert out.stat().st_mode & 0o777 == 0o600
    return json.loads(out.read_text()), public


def test_keygen_writes_the_private_key_and_prints_only_the_public_one(tmp_path: Path) -> None:
    secret, public = _keygen(tmp_path, "signing")
    assert "d" not in public
    assert set(public) == {"kty", "crv", "x", "y", "kid"}
    assert {k: secret[k] for k in public} == public
    again = CliRunner().invoke(
        main, ["clinic", "keygen", "--out", str(tmp_path / "signing.jwk.json")]
    )
    assert again.exit_code == 1
    assert "is never overwritten" in again.output


def test_a_clinic_is_onboarded_through_the_api_and_submits(world: World, tmp_path: Path) -> None:
    accreditor = world.bearer("accreditor", country="TJ")
    created = world.http.post(
        "/api/v1/clinics",
        json={
            "id": "TJ-KUL-0009",
            "name": "Kulob Medical Examination Centre",
            "country": "TJ",
            "city": "Kulob",
            "purposes": ["pre-departure"],
            "accredited_from": "2020-01-01",
            "annual_quota": 500,
        },
        headers=accreditor,
    )
    assert created.status_code == 201, created.json
    signing_secret, signing_public = _keygen(tmp_path, "signing")
    client_secret, client_public = _keygen(tmp_path, "client")

    key = world.http.post(
        "/api/v1/clinics/TJ-KUL-0009/keys", json={"jwk": signing_public}, headers=accreditor
    )
    assert key.status_code == 201, key.json
    assert (key.json["kid"], key.json["custody"]) == (signing_public["kid"], "clinic-held")
    client = world.http.post(
        "/api/v1/clinics/TJ-KUL-0009/clients", json={"jwk": client_public}, headers=accreditor
    )
    assert client.status_code == 201, client.json
    client_id = client.json["client_id"]
    assert client_id == f"clinic-tj-kul-0009-{client_public['kid'][:8].lower()}"
    assert (client.json["role"], client.json["clinic_id"]) == ("clinic", "TJ-KUL-0009")
    assert "d" not in client.json["jwks"]["keys"][0]

    clinic = ApiClient(client_id, "clinic", load_private_jwk(client_secret), client_secret["kid"])
    issued = world.http.post("/oauth/token", data=token_form(clinic.assertion()))
    assert issued.status_code == 200, issued.json
    headers = {"Authorization": f"Bearer {issued.json['access_token']}"}
    bundle = signed(
        examination_bundle(clinic_id="TJ-KUL-0009", number="KUL-1"),
        load_private_jwk(signing_secret),
        signing_secret["kid"],
    )
    submitted = world.http.post(
        "/api/v1/examinations",
        data=body(bundle),
        headers=headers,
        content_type="application/fhir+json",
    )
    assert submitted.status_code == 201, submitted.json
    assert submitted.json["signing_kid"] == signing_public["kid"]
    assert submitted.json["custodial"] is False

    with world.ctx.db.read_session() as session:
        actions = [
            (e.action, e.actor)
            for e in session.scalars(
                select(AuditEvent)
                .where(AuditEvent.object_id.in_(["TJ-KUL-0009", signing_public["kid"], client_id]))
                .order_by(AuditEvent.id)
            )
        ]
        stored = session.get(Client, client_id)
    accreditor_id = actions[0][1]
    assert accreditor_id.startswith("accreditor-")
    assert actions == [
        ("clinic.create", accreditor_id),
        ("key.create", accreditor_id),
        ("client.create", accreditor_id),
    ]
    assert stored is not None and stored.clinic_id == "TJ-KUL-0009"


def test_the_client_endpoint_refuses_private_keys_other_countries_and_bad_keys(
    world: World, tmp_path: Path
) -> None:
    world.clinic("TJ-DUS-0007")
    secret, public = _keygen(tmp_path, "client")
    tj = world.bearer("accreditor", country="TJ")
    url = "/api/v1/clinics/TJ-DUS-0007/clients"
    private = world.http.post(url, json={"jwk": secret}, headers=tj)
    assert private.status_code == 400
    assert private.json["message"] == (
        "send the public key only: the JWK contains the private member 'd'"
    )
    kg = world.http.post(
        url, json={"jwk": public}, headers=world.bearer("accreditor", country="KG")
    )
    assert kg.status_code == 403
    broken = world.http.post(url, json={"jwk": {"kty": "EC", "crv": "P-256"}}, headers=tj)
    assert broken.status_code == 400
    assert broken.json["message"].startswith("client key:")
    clinic = world.http.post(
        url, json={"jwk": public}, headers=world.bearer("clinic", clinic_id="TJ-DUS-0007")
    )
    assert clinic.status_code == 403
    missing = world.http.post(
        "/api/v1/clinics/TJ-XXX-0001/clients", json={"jwk": public}, headers=tj
    )
    assert missing.status_code == 404
