"""Whatever arrives, parsing answers an ExaminationRecord or InvalidResource, never a crash."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.errors import InvalidResource
from registry.fhir import parse_examination_bundle
from tests.fhir.fhir_support import EXAMPLE_TODAY, load_example

FAST = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _refusal(raw: Any, **kwargs: Any) -> InvalidResource:
    with pytest.raises(InvalidResource) as caught:
        parse_examination_bundle(raw, today=EXAMPLE_TODAY, **kwargs)
    return caught.value


def _assert_handled(raw: Any) -> None:
    """Success, or a refusal that our own checks produced (the safety net did not fire)."""
    try:
        parse_examination_bundle(raw, today=EXAMPLE_TODAY)
    except InvalidResource as exc:
        assert exc.issues
        assert all(issue.code != "exception" for issue in exc.issues), exc.issues


@pytest.mark.parametrize(
    "body", [b"[" * 10_000 + b"]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000]
)
def test_ten_thousand_levels_of_nesting_are_refused_cleanly(body):
    refusal = _refusal(body)

    assert [issue.code for issue in refusal.issues] == ["too-costly"]


def test_deeply_nested_python_object_is_refused_cleanly():
    root: dict[str, Any] = {}
    node = root
    for _ in range(10_000):
        node["a"] = {}
        node = node["a"]

    refusal = _refusal(root)

    assert refusal.issues[0].code == "structure"


def test_nesting_within_the_limit_is_measured_outside_strings():
    # Brackets inside a string value do not count as nesting.
    refusal = _refusal(json.dumps({"resourceType": "Bundle", "note": "[" * 500}), max_depth=3)

    assert [(issue.code, issue.location) for issue in refusal.issues][:1] == [
        ("structure", "Bundle.note")
    ]


def test_five_megabyte_string_value_is_parsed_without_trouble():
    bundle = load_example("valid-pre-departure.json")
    bundle["entry"][0]["resource"]["title"] = "x" * 5_000_000
    body = json.dumps(bundle).encode()
    started = time.perf_counter()

    record = parse_examination_bundle(body, today=EXAMPLE_TODAY)

    assert len(record.bundle["entry"][0]["resource"]["title"]) == 5_000_000
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"not json", "not valid JSON"),
        (b"[]", "got an array"),
        (b'"Bundle"', "got a string"),
        (b'{"resourceType": "Bundle", "total": NaN}', "not valid JSON"),
        (
            b'{"resourceType": "Bundle", "type": "document", "type": "collection"}',
            "duplicate key 'type'",
        ),
        (b'{"resourceType": "Bundle", "total": 1' + b"0" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body, fragment):
    refusal = _refusal(body)

    assert fragment in refusal.issues[0].diagnostics


@pytest.mark.parametrize("raw", [None, 42, 3.5, ["Bundle"], object()])
def test_non_json_arguments_are_refused(raw):
    assert _refusal(raw).issues


def test_other_resource_types_at_the_top_are_refused():
    refusal = _refusal({"resourceType": "Patient"})

    assert refusal.issues[0].location == "Bundle.resourceType"


def test_too_many_entries_are_refused_before_parsing():
    bundle = load_example("valid-pre-departure.json")

    refusal = _refusal(bundle, max_entries=10)

    assert [(issue.code, issue.location) for issue in refusal.issues] == [
        ("too-costly", "Bundle.entry")
    ]


@pytest.mark.parametrize(
    ("resource", "location"),
    [
        ([1, 2], "Bundle.entry[1].resource"),
        ({"resourceType": 7}, "Bundle.entry[1].resource.resourceType"),
        ({"resourceType": "Bundle", "type": "document"}, "Bundle.entry[1].resource.resourceType"),
        ({"resourceType": "Parameters"}, "Bundle.entry[1].resource.resourceType"),
    ],
)
def test_entry_resources_of_the_wrong_kind_are_located(resource, location):
    bundle = load_example("valid-pre-departure.json")
    bundle["entry"][1]["resource"] = resource

    refusal = _refusal(bundle)

    assert location in [issue.location for issue in refusal.issues]


def test_unknown_resource_type_in_contained_is_reported_not_raised():
    bundle = load_example("valid-pre-departure.json")
    bundle["entry"][1]["resource"]["contained"] = [{"resourceType": "Zzz"}]

    refusal = _refusal(bundle)

    assert ("not-supported", "Bundle.entry[1].resource.contained") in [
        (i.code, i.location) for i in refusal.issues
    ]


def test_model_errors_carry_element_locations():
    bundle = load_example("valid-pre-departure.json")
    bundle["entry"][1]["resource"]["name"] = {"family": "Karimov"}
    bundle["entry"][2]["resource"]["colour"] = "green"

    refusal = _refusal(bundle)

    locations = [issue.location for issue in refusal.issues]
    assert "Bundle.entry[1].resource.name" in locations
    assert "Bundle.entry[2].resource.colour" in locations


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)
fhirish_keys = st.sampled_from(
    [
        "resourceType",
        "entry",
        "resource",
        "type",
        "reference",
        "coding",
        "system",
        "code",
        "fullUrl",
        "gender",
        "extension",
    ]
)
fhirish_values = st.recursive(
    st.none()
    | st.integers()
    | st.sampled_from(["Bundle", "Patient", "document", "urn:uuid:x", "Banana", ""]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(fhirish_keys, children, max_size=4)
    ),
    max_leaves=20,
)


@FAST
@given(st.one_of(json_values, fhirish_values))
def test_random_json_never_escapes_as_anything_but_invalid_resource(value):
    _assert_handled(json.dumps(value))
    if isinstance(value, dict):
        _assert_handled({"resourceType": "Bundle", **value})


@FAST
@given(st.binary(max_size=200))
def test_random_bytes_never_escape(body):
    _assert_handled(body)


_PRISTINE = {
    name: load_example(name)
    for name in ("valid-pre-departure.json", "valid-return.json", "valid-in-host.json")
}


@st.composite
def mutated_bundles(draw: st.DrawFn) -> dict[str, Any]:
    bundle = copy.deepcopy(_PRISTINE[draw(st.sampled_from(sorted(_PRISTINE)))])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        parent: Any = bundle
        key: Any = None
        node: Any = bundle
        while isinstance(node, dict | list) and node and draw(st.integers(0, 9)) < 8:
            key = (
                draw(st.sampled_from(sorted(node)))
                if isinstance(node, dict)
                else draw(st.integers(0, len(node) - 1))
            )
            parent, node = node, node[key]
        if key is None:
            continue
        action = draw(st.sampled_from(["replace", "delete", "duplicate"]))
        if action == "delete":
            del parent[key]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(node))
        else:
            parent[key] = draw(st.one_of(fhirish_values, json_values))
    return bundle


@FAST
@given(mutated_bundles())
def test_mutated_valid_bundles_never_escape(bundle):
    _assert_handled(bundle)
    _assert_handled(json.dumps(bundle, ensure_ascii=False).encode())


def test_diagnostics_stay_short_when_the_input_is_huge():
    bundle = load_example("valid-pre-departure.json")
    bundle["entry"][1]["resource"]["gender"] = "f" * 1_000_000

    refusal = _refusal(bundle)

    assert refusal.issues[0].location == "Bundle.entry[1].resource.gender"
    assert all(len(issue.diagnostics) < 300 for issue in refusal.issues)


def test_issue_list_is_capped():
    bundle = load_example("valid-pre-departure.json")
    observation = bundle["entry"][6]
    bundle["entry"].extend(
        {**observation, "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{n:012d}"} for n in range(300)
    )

    refusal = _refusal(bundle)

    assert len(refusal.issues) == 101
    assert refusal.issues[-1].code == "too-costly"
