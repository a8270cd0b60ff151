"""Numbers we accept: NaN and Infinity are not JSON, and every card time is range-checked."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from registry.certificates import shc
from registry.cli import main
from registry.crypto import jws
from registry.crypto.keys import PrivateKey, public_jwk, thumbprint
from tests.support import World, token_form
from tests.verification.helpers import (
    PARTNER_ISSUER,
    other_card_payload,
    partner_jwks,
    partner_key,
    register_issuer,
    verify,
)

NOW = datetime.now(UTC)
YEAR = timedelta(days=365)


def _raw_card(payload_text: str, key: PrivateKey) -> str:
    """A card whose payload is exactly this text (which may hold what JSON does not allow)."""
    raw = shc.deflate(payload_text.encode("utf-8"))
    return jws.sign(raw, key, kid=thumbprint(public_jwk(key)), headers={"zip": "DEF"})


def _card(key: PrivateKey, **times: Any) -> str:
    payload = other_card_payload(PARTNER_ISSUER, nbf=NOW - timedelta(days=1), exp=NOW + YEAR)
    payload.update(times)
    return _raw_card(json.dumps(payload), key)


@pytest.fixture
def partner(world: World) -> PrivateKey:
    key, _kid = partner_key()
    register_issuer(world, PARTNER_ISSUER, partner_jwks(key))
    return key


@pytest.mark.parametrize(
    "times",
    [
        {"nbf": 1e20},
        {"nbf": int((NOW - timedelta(days=1)).timestamp() * 1000)},  # milliseconds
        {"nbf": -86400},
        {"exp": 1e20},
        {"exp": int((NOW + YEAR).timestamp() * 1000)},
        {"exp": -1e300},
    ],
    ids=["nbf-1e20", "nbf-ms", "nbf-negative", "exp-1e20", "exp-ms", "exp-huge-negative"],
)
def test_a_trusted_card_with_a_time_out_of_range_is_malformed(
    world: World, partner: PrivateKey, times: dict[str, Any]
) -> None:
    answer = verify(world, {"jws": _card(partner, **times)})
    assert answer["result"] == "malformed"
    (claim,) = times
    assert (
        f"the payload's {claim} is not a time in seconds between 1970 and 3000"
        in (answer["reason"])
    )


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_card_with_nan_or_infinity_never_verifies(
    world: World, partner: PrivateKey, constant: str
) -> None:
    payload = other_card_payload(PARTNER_ISSUER, nbf=NOW - timedelta(days=1))
    text = json.dumps(payload)[:-1] + f',"exp":{constant}}}'
    answer = verify(world, {"jws": _raw_card(text, partner)})
    assert answer["result"] == "malformed"
    assert f"{constant} is not a JSON number" in answer["reason"]


def test_a_card_within_range_still_verifies(world: World, partner: PrivateKey) -> None:
    answer = verify(world, {"jws": _card(partner)})
    assert (answer["result"], answer["card_type"]) == ("valid", "other")


def _run(arguments: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(main, arguments, env=env)


@pytest.mark.committed
def test_registry_verify_online_and_offline_answer_malformed_for_out_of_range_times(
    world: World, partner: PrivateKey, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    trust_file = tmp_path / "trust-list.json"
    trust_file.write_text(json.dumps(world.http.get("/api/v1/trust-list").json))
    for times in ({"nbf": 1e20}, {"exp": 1e20}):
        card = _card(partner, **times)
        for arguments in (
            ["verify", card],
            ["verify", "--offline", "--trust-list", str(trust_file), card],
        ):
            result = _run(arguments, cli_env)
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                result.output
            )
            assert result.exit_code == 1, result.output
            assert json.loads(result.output)["result"] == "malformed"


def test_a_json_body_with_nan_is_a_400_naming_it(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    response = world.http.post(
        "/api/v1/examinations/whatever/withdraw",
        data='{"reason": NaN}',
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 400, response.json
    assert response.json["message"] == "NaN is not a JSON number"


def test_a_client_assertion_with_exp_far_ahead_is_refused_not_a_crash(world: World) -> None:
    client = world.api_client("employer")
    response = world.http.post("/oauth/token", data=token_form(client.assertion(exp=10**20)))
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.json["error_description"] == "assertion exp may be at most 5 minutes ahead"


def test_a_client_assertion_with_nan_is_refused(world: World) -> None:
    client = world.api_client("employer")
    response = world.http.post("/oauth/token", data=token_form(client.assertion(nbf=float("nan"))))
    assert response.status_code == 401, response.get_data(as_text=True)
    assert "NaN is not a JSON number" in response.json["error_description"]
