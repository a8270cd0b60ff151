"""The signed trust list and verification with no network: same answers as the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import CliRunner

from registry.certificates import shc
from registry.cli import main
from registry.verification.offline import (
    TrustList,
    TrustListError,
    document_keys_from,
    presented_cards,
    verify_offline,
)
from registry.verification.schemas import VerificationSchema
from registry.verification.verdict import Presented
from tests.support import BASE_URL, World
from tests.verification.helpers import (
    PARTNER_ISSUER,
    SHC_EXAMPLES,
    SPEC_ISSUER,
    card_of,
    certificate,
    example,
    other_card_payload,
    partner_jwks,
    partner_key,
    publish,
    qr_of,
    register_issuer,
    revoke,
    scenarios,
    sign_card,
    spec_issuer_files,
    verify,
)

# What an offline answer cannot know, or knows from another clock.
# log_leaf: the online answer is itself logged; an offline check is not
ONLINE_ONLY = (
    "receipt",
    "checked_at",
    "revocation_checked_at",
    "holder",
    "authority_view",
    "log_leaf",
    "revoked_at",  # the trust list names revoked cards, not since when
)


def _trust_list(world: World) -> dict[str, Any]:
    response = world.http.get("/api/v1/trust-list")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    body: dict[str, Any] = response.json
    return body


def _pinned(world: World) -> dict[str, Any]:
    return document_keys_from(world.http.get("/.well-known/registry-keys.json").json)


def _loaded(world: World) -> TrustList:
    return TrustList.load(json.dumps(_trust_list(world)).encode(), registry_keys=_pinned(world))


def test_the_trust_list_is_signed_by_the_registry_document_key(world: World) -> None:
    publish(world)
    body = _trust_list(world)
    key = world.ctx.keystore.active("document")
    assert jwt.get_unverified_header(body["jws"])["kid"] == key.kid
    signed = jwt.PyJWS().decode(body["jws"], key.public_key, algorithms=["ES256"])
    assert json.loads(signed) == body["document"]


def test_the_trust_list_names_issuers_clinics_windows_and_revocations(world: World) -> None:
    publish(world, "TJ-DUS-0007", "KG-BIS-0001")
    issued = certificate(world)
    revoke(world, issued.id)
    key, kid = partner_key()
    register_issuer(world, PARTNER_ISSUER, partner_jwks(key))
    document = _trust_list(world)["document"]
    assert document["type"] == "exam-registry-trust-list" and document["version"] == 1
    assert document["registry"] == BASE_URL
    registry, partner = document["issuers"]
    assert registry["iss"] == BASE_URL and registry["kind"] == "registry"
    certificate_kids = [k.kid for k in world.ctx.keystore.keys("certificate")]
    assert [k["kid"] for k in registry["keys"]] == certificate_kids
    # every certificate key announces its list, empty ones (ctr 1) included
    versions = {k["kid"]: k["crlVersion"] for k in registry["keys"]}
    assert versions[issued.kid] == 2
    assert set(versions.values()) <= {1, 2}
    assert partner["iss"] == PARTNER_ISSUER and [k["kid"] for k in partner["keys"]] == [kid]
    clinics = {c["id"]: c for c in document["clinics"]}
    assert sorted(clinics) == ["KG-BIS-0001", "TJ-DUS-0007"]
    clinic = clinics["TJ-DUS-0007"]
    assert clinic["accredited_from"] == "2020-01-01" and clinic["accredited_until"] is None
    assert [e["status"] for e in clinic["history"]] == ["active"]
    assert len(clinic["keys"]) == 1 and "d" not in clinic["keys"][0]["jwk"]
    lists = {r["kid"]: r for r in document["revocations"]}
    assert sorted(lists) == sorted(certificate_kids)
    revocation = lists[issued.kid]
    assert revocation["iss"] == BASE_URL
    assert all(not r["crl"]["rids"] for kid, r in lists.items() if kid != issued.kid)
    assert revocation["crl"]["rids"][0].startswith(f"{issued.rid}.")
    assert revocation["as_of"] == document["revocations_as_of"]


def test_offline_answers_match_the_api_for_every_result(world: World) -> None:
    inputs = scenarios(world)
    trust_list = _loaded(world)
    for expected, fields in inputs.items():
        if "certificate_id" in fields:
            continue  # a certificate number is looked up online only
        online = verify(world, fields)
        offline = verify_offline(
            Presented(qr=fields["qr"], for_destination=fields.get("for_destination")),
            trust_list=trust_list,
        )
        answer = VerificationSchema().dump(offline.verification)
        assert answer["result"] == expected, answer
        for field in ONLINE_ONLY:
            online.pop(field)
            answer.pop(field)
        assert answer == online, expected
        assert offline.revocation_age_seconds is not None
        assert 0 <= offline.revocation_age_seconds < 60


def test_offline_names_the_holder_as_the_card_does_without_hint_or_photo(world: World) -> None:
    publish(world)
    issued = certificate(world)
    offline = verify_offline(Presented(qr=qr_of(world, issued)), trust_list=_loaded(world))
    holder = offline.verification.holder
    assert holder is not None
    assert (holder.name, holder.birth_date) == ("Karimov Rustam Saidovich", "1991-03-14")
    assert holder.document_hint is None and holder.photo_url is None


def test_a_revocation_after_the_export_is_unknown_offline_until_the_list_is_renewed(
    world: World,
) -> None:
    publish(world)
    issued = certificate(world)
    stale = _loaded(world)
    revoke(world, issued.id)
    qr = Presented(qr=qr_of(world, issued))
    later = datetime.now(UTC) + timedelta(hours=5)
    old_answer = verify_offline(qr, trust_list=stale, now=later)
    assert old_answer.verification.result == "valid"
    # the answer says how old its revocation data is: a verifier decides whether to trust it
    assert old_answer.revocation_age_seconds is not None
    assert old_answer.revocation_age_seconds >= 5 * 3600
    assert verify_offline(qr, trust_list=_loaded(world)).verification.result == "revoked"


def test_a_tampered_or_foreign_trust_list_is_refused(world: World) -> None:
    publish(world)
    body = _trust_list(world)
    header, payload, signature = body["jws"].split(".")
    document = json.loads(jwt.utils.base64url_decode(payload))
    document["issuers"].append(
        {"iss": "https://evil.example", "kind": "external", "status": "active", "keys": []}
    )
    forged_payload = jwt.utils.base64url_encode(json.dumps(document).encode()).decode()
    forged = f"{header}.{forged_payload}.{signature}"
    with pytest.raises(TrustListError, match="does not verify"):
        TrustList.load(forged.encode(), registry_keys=_pinned(world))
    other_key, other_kid = partner_key()
    with pytest.raises(TrustListError, match="not a registry key"):
        TrustList.load(body["jws"].encode(), registry_keys={other_kid: other_key.public_key()})
    with pytest.raises(TrustListError):
        TrustList.load(b'{"something": "else"}', registry_keys=_pinned(world))
    unpinned = TrustList.load(body["jws"].encode(), registry_keys=None)
    assert not unpinned.pinned


def test_the_spec_examples_verify_offline_through_a_registered_issuer(world: World) -> None:
    if not SHC_EXAMPLES.is_dir():
        pytest.skip(f"the SMART Health Cards example vectors are not at {SHC_EXAMPLES}")
    jwks, crls = spec_issuer_files()
    register_issuer(world, SPEC_ISSUER, jwks, crls)
    trust_list = _loaded(world)
    genuine = verify_offline(Presented(jws=example("00", "d-jws.txt")), trust_list=trust_list)
    revoked = verify_offline(
        Presented(qr=example("03", "f-qr-code-numeric-value-0.txt")), trust_list=trust_list
    )
    assert (genuine.verification.result, genuine.verification.card_type) == ("valid", "other")
    assert (revoked.verification.result, revoked.verification.card_type) == ("revoked", "other")


def test_command_line_inputs_are_read_as_qr_text_jws_or_card_files(
    world: World, tmp_path: Path
) -> None:
    publish(world)
    token = card_of(world, certificate(world))
    qr = shc.qr_payload(token)
    card_file = tmp_path / "card.smart-health-card"
    card_file.write_bytes(shc.health_card_file([token, token]))
    qr_file = tmp_path / "scan.txt"
    qr_file.write_text(qr + "\n")
    assert presented_cards(qr) == [Presented(qr=qr)]
    assert presented_cards(token) == [Presented(jws=token)]
    assert presented_cards(str(card_file)) == [Presented(jws=token), Presented(jws=token)]
    assert presented_cards(str(qr_file)) == [Presented(qr=qr)]


# -- the command line ------------------------------------------------------------------------
def _run(arguments: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(main, arguments, env=env)


@pytest.mark.committed
def test_export_then_verify_offline_prints_the_api_answer_and_the_data_age(
    world: World, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    publish(world)
    issued = certificate(world)
    trust_file = tmp_path / "trust-list.json"
    exported = _run(["trust-list", "export", "-o", str(trust_file)], cli_env)
    assert exported.exit_code == 0, exported.output
    lists = len(world.ctx.keystore.keys("certificate"))  # each key's list, empty ones too
    assert f"1 issuer(s), 1 clinic(s), {lists} revocation list(s)" in exported.output
    jwks_file = tmp_path / "registry-keys.json"
    jwks_file.write_text(json.dumps(world.http.get("/.well-known/registry-keys.json").json))
    qr = qr_of(world, issued)
    result = _run(
        [
            "verify",
            "--offline",
            "--trust-list",
            str(trust_file),
            "--registry-jwks",
            str(jwks_file),
            qr,
        ],
        # offline needs no database: point it at one that does not exist
        {**cli_env, "REGISTRY_DATABASE_URL": "sqlite:////nonexistent/registry.sqlite3"},
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    online = verify(world, {"qr": qr})
    assert answer["result"] == "valid"
    assert answer["certificate"] == online["certificate"]
    assert answer["clinic"] == online["clinic"]
    assert answer["receipt"] is None
    offline = answer["offline"]
    assert offline["trust_list_signature"] == "pinned registry key"
    assert offline["revocation_data_age_seconds"] >= 0
    assert (
        offline["revocation_data_as_of"]
        == json.loads(trust_file.read_text())["document"]["revocations_as_of"]
    )


def test_verify_offline_reads_a_card_file_and_exits_1_unless_every_card_is_valid(
    world: World, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    publish(world)
    good = card_of(world, certificate(world, number="CLI-1"))
    revoked = certificate(world, number="CLI-2")
    revoke(world, revoked.id)
    card_file = tmp_path / "cards.smart-health-card"
    card_file.write_bytes(shc.health_card_file([good, card_of(world, revoked)]))
    trust_file = tmp_path / "trust-list.json"
    trust_file.write_text(json.dumps(_trust_list(world)))
    result = _run(["verify", "--offline", "--trust-list", str(trust_file), str(card_file)], cli_env)
    assert result.exit_code == 1, result.output
    answers = json.loads(result.output)
    assert [a["result"] for a in answers] == ["valid", "revoked"]
    # the key folder of this machine pinned the list's signature
    assert answers[0]["offline"]["trust_list_signature"] == "pinned registry key"


@pytest.mark.committed
def test_verify_online_uses_the_configured_database_and_is_audited(
    world: World, cli_env: dict[str, str]
) -> None:
    from sqlalchemy import select

    from registry.verification.models import VerificationEvent

    publish(world)
    issued = certificate(world)
    by_qr = _run(["verify", qr_of(world, issued)], cli_env)
    assert by_qr.exit_code == 0, by_qr.output
    answer = json.loads(by_qr.output)
    assert answer["result"] == "valid" and answer["receipt"]
    by_number = _run(
        ["verify", "--certificate-id", issued.id, "--birth-date", "1990-01-01"], cli_env
    )
    assert by_number.exit_code == 1
    assert json.loads(by_number.output)["result"] == "not_found"
    with world.ctx.db.read_session() as session:
        log = session.scalars(select(VerificationEvent)).all()
    assert [(e.channel, e.verifier_role) for e in log] == [("cli", "admin")]


def test_verify_offline_for_another_country_names_it_and_exits_1(
    world: World, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    publish(world)
    issued = certificate(world, number="CLI-DEST")
    trust_file = tmp_path / "trust-list.json"
    trust_file.write_text(json.dumps(_trust_list(world)))
    command = ["verify", "--offline", "--trust-list", str(trust_file), qr_of(world, issued)]
    for_kazakhstan = _run([*command, "--for-destination", "kz"], cli_env)
    assert for_kazakhstan.exit_code == 0, for_kazakhstan.output
    for_russia = _run([*command, "--for-destination", "RU"], cli_env)
    assert for_russia.exit_code == 1
    answer = json.loads(for_russia.output)
    assert (answer["result"], answer["reason_code"]) == (
        "valid_for_other_destination",
        "other-destination",
    )
    assert answer["certificate"]["destination"] == "KZ"
    wrong = _run([*command, "--for-destination", "Russia"], cli_env)
    assert wrong.exit_code == 2 and "alpha-2" in wrong.output


def test_verify_offline_without_a_trust_list_is_a_usage_error(cli_env: dict[str, str]) -> None:
    result = _run(["verify", "--offline", "shc:/00"], cli_env)
    assert result.exit_code == 2
    assert "--offline needs --trust-list" in result.output


def test_an_other_kind_of_card_exits_1_offline(
    world: World, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    key, _kid = partner_key()
    register_issuer(world, PARTNER_ISSUER, partner_jwks(key))
    card = sign_card(other_card_payload(PARTNER_ISSUER, nbf=datetime.now(UTC)), key)
    trust_file = tmp_path / "trust-list.json"
    trust_file.write_text(json.dumps(_trust_list(world)))
    result = _run(["verify", "--offline", "--trust-list", str(trust_file), card], cli_env)
    assert result.exit_code == 1
    answer = json.loads(result.output)
    assert (answer["result"], answer["card_type"], answer["certificate"]) == (
        "valid",
        "other",
        None,
    )
