"""The portal's pages and its form catalogue: languages, headers, rulesets and ValueSets."""

from __future__ import annotations

import json

import pytest

from registry.fhir.terminology import load_terminology
from tests.support import World

PAGES = ("/clinic", "/clinic/examinations/new", "/clinic/examinations/EX1", "/clinic/referrals")


@pytest.mark.parametrize(
    ("lang", "title"),
    [
        ("en", "Client key file"),
        ("ru", "Файл ключа клиента"),
        ("tg", "Файли калиди мизоҷ"),
        ("uz", "Mijoz kaliti fayli"),
    ],
)
def test_every_page_speaks_the_chosen_language_under_the_strict_policy(
    world: World, lang: str, title: str
) -> None:
    for path in PAGES:
        page = world.http.get(f"{path}?lang={lang}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert f'<html lang="{lang}">' in html
        assert title in html
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["Permissions-Policy"].startswith("camera=(self)")
        words = json.loads(html.split('id="portal-text">', 1)[1].split("</script>", 1)[0])
        assert (
            words["sign_and_submit"]
            == {
                "en": "Sign and submit",
                "ru": "Подписать и отправить",
                "tg": "Имзо гузоштан ва фиристодан",
                "uz": "Imzolash va yuborish",
            }[lang]
        )


def test_the_catalogue_offers_the_rulesets_in_force_and_only_value_set_codes(
    world: World,
) -> None:
    catalogue = world.http.get("/clinic/catalogue.json?lang=ru").json
    rulesets = {r["destination"]: r for r in catalogue["rulesets"]}
    assert sorted(rulesets) == ["KZ", "RU", "TM"]
    assert rulesets["KZ"]["required"] == [["chest-xray"], ["hiv-screening", "hiv-confirmation"]]
    assert "pre-departure" in rulesets["KZ"]["purposes"]
    terminology = load_terminology()
    assert set(catalogue["tests"]) == set(terminology.concepts)
    for key, test in catalogue["tests"].items():
        allowed = terminology.value_sets[terminology.concepts[key].result_value_set]
        assert {(r["system"], r["code"]) for r in test["results"]} == set(allowed)
    assert catalogue["tests"]["chest-xray"]["label"] == "Рентгенография грудной клетки"
    assert catalogue["tests"]["chest-xray"]["code"] == {
        "system": "http://loinc.org",
        "code": "36643-5",
    }
    assert catalogue["tests"]["leprosy-clinical"]["category"] == "exam"
    assert {p["code"] for p in catalogue["purposes"]} == {
        "pre-departure",
        "return",
        "in-host",
        "periodic",
    }
    kz = next(c for c in catalogue["countries"] if c["code"] == "KZ")
    assert kz["label"] == "Казахстан"
