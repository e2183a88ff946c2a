"""Damaged bundles get a BundleError naming the problem, never a crash (a 500 in the API)."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

import pytest

from patients.fhir.parse import BundleError, parse_bundle
from tests.patients.bundles import dumps, load

REPLACEMENTS: list[Any] = [None, "", "x", 0, -1, 1e308, [], {}, True, "2099-01-01", {"a": 1}, ["a"]]


def element_paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*prefix, key)
            yield from element_paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield (*prefix, i)
            yield from element_paths(value, (*prefix, i))


@pytest.mark.parametrize("seed", range(4))
def test_a_randomly_damaged_element_is_reported_or_tolerated_never_a_crash(seed: int) -> None:
    rng = random.Random(seed)
    original = load()
    for _ in range(40):
        bundle = copy.deepcopy(original)
        resource = rng.choice(bundle["entry"])["resource"]
        path = rng.choice(list(element_paths(resource)))
        holder = resource
        for key in path[:-1]:
            holder = holder[key]
        if rng.random() < 0.3:
            del holder[path[-1]]
        else:
            holder[path[-1]] = rng.choice(REPLACEMENTS)
        try:
            parse_bundle(dumps(bundle))
        except BundleError as exc:
            assert exc.problems and all(p.field for p in exc.problems)


@pytest.mark.parametrize(
    "resource_type", [True, "", "NotAResource", {"a": 1}], ids=["bool", "empty", "unknown", "dict"]
)
def test_an_entry_with_a_bad_resource_type_is_named(resource_type: Any) -> None:
    bundle = load()
    bundle["entry"][3]["resource"]["resourceType"] = resource_type
    with pytest.raises(BundleError) as caught:
        parse_bundle(dumps(bundle))
    assert str(caught.value.problems[0]).startswith("entry 3")


def test_null_elements_read_as_absent_not_as_the_text_none() -> None:
    bundle = load()
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    for ext in patient.get("extension", []):
        ext["extension"] = None
    encounter = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
    )
    encounter["class"]["code"] = None
    parsed = parse_bundle(dumps(bundle), validate=False)
    assert parsed.patient.race == ""
    assert parsed.encounters[0].class_code == ""
