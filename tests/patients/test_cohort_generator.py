"""Tests for the synthetic demo cohort generator (pure Python; run with ``-p no:django``)."""

from __future__ import annotations

import base64
import datetime as dt
import inspect
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from patients.cohort.generator import (
    OBSERVATION_CODES,
    PRACTITIONERS,
    ckd_epi_2021,
    convert,
    creatinine_for_egfr,
    dose_factor,
    generate_cohort,
    generate_patient,
)

TODAY = dt.date(2026, 6, 30)
N = 240

Bundle = dict[str, Any]


@pytest.fixture(scope="module")
def cohort() -> list[Bundle]:
    return list(generate_cohort(N, seed=11, today=TODAY))


def resources(bundle: Bundle, kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def note_text(doc: dict[str, Any]) -> str:
    return base64.b64decode(doc["content"][0]["attachment"]["data"]).decode("utf-8")


def section(text: str, name: str) -> str:
    match = re.search(rf"^{name}:\n(.*?)(?:\n\n|\Z)", text, re.S | re.M)
    return match.group(1) if match else ""


def codes(res: dict[str, Any]) -> set[str]:
    return {c["code"] for c in res["code"]["coding"]}


def clinic_bp(bundle: Bundle) -> dict[str, tuple[int, int]]:
    """Clinic BP by encounter reference."""
    out = {}
    for obs in resources(bundle, "Observation"):
        if "85354-9" in codes(obs) and obs["meta"]["tag"][0]["code"] == "clinic":
            comp = {
                c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
                for c in obs["component"]
            }
            out[obs["encounter"]["reference"]] = (comp["8480-6"], comp["8462-4"])
    return out


# ---------------------------------------------------------------------------------------------
# Determinism, identifiers and shape


def test_it_regenerates_an_identical_bundle_for_the_same_index_seed_and_day() -> None:
    assert generate_patient(17, seed=3, today=TODAY) == generate_patient(17, seed=3, today=TODAY)


def test_it_gives_different_ids_for_another_seed() -> None:
    a = {e["fullUrl"] for e in generate_patient(17, seed=3, today=TODAY)["entry"]}
    b = {e["fullUrl"] for e in generate_patient(17, seed=4, today=TODAY)["entry"]}
    practitioner_urls = {f"urn:uuid:{p.id}" for p in PRACTITIONERS} | {
        f"urn:uuid:{p.role_id}" for p in PRACTITIONERS
    }
    assert (a & b) <= practitioner_urls


def test_generate_cohort_is_a_lazy_generator_matching_generate_patient() -> None:
    gen = generate_cohort(3, seed=2, today=TODAY)
    assert inspect.isgenerator(gen)
    assert next(gen) == generate_patient(0, seed=2, today=TODAY)


def test_it_rejects_a_negative_index_or_an_unreasonable_span() -> None:
    with pytest.raises(ValueError, match="index"):
        generate_patient(-1, today=TODAY)
    with pytest.raises(ValueError, match="years"):
        generate_patient(0, today=TODAY, years=0.1)
    with pytest.raises(ValueError, match="n must"):
        next(generate_cohort(-2, today=TODAY))


def test_bundles_are_transactions_of_posts_with_urn_uuid_references_that_resolve(
    cohort: list[Bundle],
) -> None:
    ref = re.compile(r'"reference": "([^"]+)"')
    for bundle in cohort[:40]:
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        urls = set()
        for e in bundle["entry"]:
            res = e["resource"]
            assert e["fullUrl"] == f"urn:uuid:{res['id']}"
            assert e["request"]["method"] == "POST" and e["request"]["url"] == res["resourceType"]
            urls.add(e["fullUrl"])
        assert len(urls) == len(bundle["entry"])
        for target in ref.findall(repr(bundle).replace("'", '"')):
            assert target in urls


def test_every_generated_bundle_validates_as_fhir_r4b(cohort: list[Bundle]) -> None:
    from fhir.resources.R4B.bundle import Bundle as FhirBundle

    kinds: Counter[str] = Counter()
    for bundle in cohort[:50]:
        FhirBundle.model_validate(bundle)
        kinds.update(e["resource"]["resourceType"] for e in bundle["entry"])
    assert set(kinds) == {
        "Practitioner",
        "PractitionerRole",
        "Patient",
        "Condition",
        "Encounter",
        "Observation",
        "MedicationRequest",
        "DocumentReference",
    }


# ---------------------------------------------------------------------------------------------
# Patients and the cohort mix


def test_mrns_are_unique_and_follow_the_tp_seven_digit_pattern(cohort: list[Bundle]) -> None:
    mrns = []
    for bundle in cohort:
        (patient,) = resources(bundle, "Patient")
        (ident,) = patient["identifier"]
        assert ident["system"] == "urn:oid:2.16.840.1.113883.19.5"
        assert ident["type"]["coding"][0]["code"] == "MR"
        mrns.append(ident["value"])
    assert all(re.fullmatch(r"TP\d{7}", m) for m in mrns)
    assert len(set(mrns)) == len(mrns)


def test_the_cohort_mixes_ages_sexes_smokers_and_the_three_phenotypes(cohort: list[Bundle]) -> None:
    ages, sexes, smokers, bmis = [], Counter(), 0, []
    mix: Counter[str] = Counter()
    for bundle in cohort:
        (patient,) = resources(bundle, "Patient")
        born = dt.date.fromisoformat(patient["birthDate"])
        ages.append((TODAY - born).days / 365.25)
        sexes[patient["gender"]] += 1
        conds = {next(iter(codes(c))) for c in resources(bundle, "Condition")}
        mix["t2d" if "44054006" in conds else "pre" if "714628002" in conds else "htn"] += 1
        obs = resources(bundle, "Observation")
        smokers += any(
            "72166-2" in codes(o) and o["valueCodeableConcept"]["coding"][0]["code"] == "449868002"
            for o in obs
        )
        bmis += [o["valueQuantity"]["value"] for o in obs if "39156-5" in codes(o)][:1]
    assert min(ages) >= 35 and max(ages) <= 86.1
    assert min(sexes.values()) > 0.35 * N
    assert 0.05 * N < smokers < 0.3 * N
    assert abs(mix["htn"] / N - 0.40) < 0.09
    assert abs(mix["pre"] / N - 0.25) < 0.08
    assert abs(mix["t2d"] / N - 0.35) < 0.09
    bmis.sort()
    assert 26 < bmis[N // 2] < 33 and bmis[0] >= 19 and bmis[-1] > 35


def test_conditions_carry_onset_and_status_and_some_are_abated(cohort: list[Bundle]) -> None:
    statuses: Counter[str] = Counter()
    for bundle in cohort:
        for cond in resources(bundle, "Condition"):
            assert cond["onsetDateTime"][10] == "T"
            assert cond["verificationStatus"]["coding"][0]["code"] == "confirmed"
            status = cond["clinicalStatus"]["coding"][0]["code"]
            statuses[status] += 1
            assert ("abatementDateTime" in cond) == (status == "resolved")
    assert statuses["active"] > statuses["resolved"] > 0


# ---------------------------------------------------------------------------------------------
# Observations, units and physiology


def test_observations_use_the_synthea_loinc_codes_with_ucum_quantities(
    cohort: list[Bundle],
) -> None:
    seen: set[str] = set()
    known = {code for code, _ in OBSERVATION_CODES.values()}
    for bundle in cohort[:60]:
        for obs in resources(bundle, "Observation"):
            (code,) = codes(obs)
            assert code in known
            seen.add(code)
            assert obs["status"] == "final"
            assert obs["effectiveDateTime"].endswith("+00:00")
            category = obs["category"][0]["coding"][0]["code"]
            assert category in ("vital-signs", "laboratory", "social-history")
            if "valueQuantity" in obs:
                assert obs["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    assert seen == known - {"8480-6", "8462-4"}


def test_some_results_arrive_in_si_units_to_exercise_unit_conversion(cohort: list[Bundle]) -> None:
    units: dict[str, set[str]] = {}
    for bundle in cohort:
        for obs in resources(bundle, "Observation"):
            if "valueQuantity" in obs:
                units.setdefault(next(iter(codes(obs))), set()).add(obs["valueQuantity"]["code"])
    assert units["4548-4"] == {"%", "mmol/mol"}
    assert units["2339-0"] == {"mg/dL", "mmol/L"}
    assert units["18262-6"] == {"mg/dL", "mmol/L"}
    assert units["2160-0"] == {"mg/dL", "umol/L"}
    assert units["29463-7"] == {"kg", "[lb_av]"}
    assert units["33914-3"] == {"mL/min/{1.73_m2}"}


def test_home_device_readings_are_tagged_frequent_and_lower_than_clinic_readings(
    cohort: list[Bundle],
) -> None:
    gaps = []
    with_home = 0
    for bundle in cohort:
        home, clinic = [], []
        for obs in resources(bundle, "Observation"):
            if "85354-9" not in codes(obs):
                continue
            source = obs["meta"]["tag"][0]
            assert source["system"] == "https://twinportal.example.org/fhir/observation-source"
            day = dt.date.fromisoformat(obs["effectiveDateTime"][:10])
            sbp = obs["component"][0]["valueQuantity"]["value"]
            (home if source["code"] == "home-device" else clinic).append((day, sbp))
            assert source["code"] in ("home-device", "clinic")
        if not home:
            continue
        with_home += 1
        assert "encounter" not in next(
            o
            for o in resources(bundle, "Observation")
            if o.get("meta", {}).get("tag", [{}])[0].get("code") == "home-device"
        )
        near = [s for d, s in clinic if min(abs((d - h).days) for h, _ in home) <= 60]
        if near:
            gaps.append(sum(s for _, s in home) / len(home) - sum(near) / len(near))
    assert with_home > 0.25 * N
    mean_gap = sum(gaps) / len(gaps)
    # Home readings sit ~5 mmHg below office readings (Pickering 2008); treatment noise blurs it.
    assert -12 < mean_gap < -1


def test_starting_a_statin_lowers_ldl_by_a_third_to_a_half(cohort: list[Bundle]) -> None:
    ratios = []
    for bundle in cohort:
        starts = [
            dt.date.fromisoformat(m["authoredOn"][:10])
            for m in resources(bundle, "MedicationRequest")
            if "statin" in m["medicationCodeableConcept"]["text"]
            and "priorPrescription" not in m
            and "encounter" in m
        ]
        if len(starts) != 1:
            continue
        ldl = sorted(
            (dt.date.fromisoformat(o["effectiveDateTime"][:10]), convert_back(o))
            for o in resources(bundle, "Observation")
            if "18262-6" in codes(o)
        )
        before = [v for d, v in ldl if d <= starts[0]]
        after = [v for d, v in ldl if (d - starts[0]).days >= 42]
        if before and after:
            ratios.append(after[0] / before[-1])
    assert len(ratios) >= 10
    mean = sum(ratios) / len(ratios)
    assert 0.45 < mean < 0.75


def convert_back(obs: dict[str, Any]) -> float:
    q = obs["valueQuantity"]
    return q["value"] * 38.67 if q["code"] == "mmol/L" else q["value"]


def test_ckd_epi_2021_matches_reference_values_and_inverts() -> None:
    # CKD-EPI 2021 (Inker 2021): creatinine 1.0 mg/dL at 50 years gives ~68.6 (female), ~91.7 (male).
    assert ckd_epi_2021(1.0, 50, "female") == pytest.approx(68.6, abs=0.3)
    assert ckd_epi_2021(1.0, 50, "male") == pytest.approx(91.7, abs=0.3)
    for egfr in (25.0, 55.0, 90.0, 120.0):
        for sex in ("female", "male"):
            assert ckd_epi_2021(creatinine_for_egfr(egfr, 63, sex), 63, sex) == pytest.approx(egfr)


def test_half_a_standard_dose_gives_the_law_2003_fraction_of_the_effect() -> None:
    assert dose_factor(0.5) == pytest.approx(7.1 / 9.1, abs=0.01)
    assert dose_factor(1.0) == 1.0


def test_si_conversions_follow_the_ifcc_and_molar_mass_factors() -> None:
    assert convert("hba1c", 6.5, True) == (48.0, "mmol/mol")
    assert convert("glucose", 126.0, True) == (7.0, "mmol/L")
    assert convert("creatinine", 1.0, True) == (88.0, "umol/L")
    assert convert("ldl", 100.0, False) == (100.0, "mg/dL")


# ---------------------------------------------------------------------------------------------
# Medication requests


def test_medication_requests_change_over_time_with_doses_bounds_and_requesters(
    cohort: list[Bundle],
) -> None:
    statuses: Counter[str] = Counter()
    for bundle in cohort[:80]:
        practitioners = {f"urn:uuid:{r['id']}" for r in resources(bundle, "Practitioner")}
        ids = {f"urn:uuid:{r['id']}" for r in resources(bundle, "MedicationRequest")}
        for med in resources(bundle, "MedicationRequest"):
            statuses[med["status"]] += 1
            assert med["intent"] == "order"
            coding = med["medicationCodeableConcept"]["coding"][0]
            assert coding["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
            assert coding["code"].isdigit()
            (dosage,) = med["dosageInstruction"]
            bounds = dosage["timing"]["repeat"]["boundsPeriod"]
            assert ("end" in bounds) == (med["status"] != "active")
            assert dosage["doseAndRate"][0]["doseQuantity"]["value"] > 0
            assert dosage["text"]
            assert med["requester"]["reference"] in practitioners or med["requester"][
                "reference"
            ].startswith("urn:uuid:")
            if "priorPrescription" in med:
                assert med["priorPrescription"]["reference"] in ids
    assert {"active", "stopped", "completed"} <= set(statuses)


# ---------------------------------------------------------------------------------------------
# Notes


def test_every_patient_has_at_least_eight_notes_by_at_least_two_roles(cohort: list[Bundle]) -> None:
    for bundle in cohort:
        roles = {
            r["id"]: r["code"][0]["coding"][1]["code"]
            for r in resources(bundle, "PractitionerRole")
        }
        docs = resources(bundle, "DocumentReference")
        assert len(docs) >= 8
        authors = {roles[d["author"][0]["reference"].removeprefix("urn:uuid:")] for d in docs}
        assert len(authors) >= 2


def test_notes_are_signed_or_draft_text_attachments_linked_to_their_encounter(
    cohort: list[Bundle],
) -> None:
    doc_status: Counter[str] = Counter()
    for bundle in cohort[:60]:
        encounters = {f"urn:uuid:{e['id']}" for e in resources(bundle, "Encounter")}
        for doc in resources(bundle, "DocumentReference"):
            assert doc["status"] == "current"
            doc_status[doc["docStatus"]] += 1
            assert next(
                iter(codes(doc) if "code" in doc else {c["code"] for c in doc["type"]["coding"]})
            ) in {
                "11506-3",
                "11488-4",
                "34117-2",
                "34745-0",
            }
            att = doc["content"][0]["attachment"]
            assert att["contentType"] == "text/plain; charset=utf-8" and att["title"]
            assert doc["context"]["encounter"][0]["reference"] in encounters
            text = note_text(doc)
            for header in ("HISTORY:", "MEDICATIONS:", "EXAMINATION:", "ASSESSMENT:", "PLAN:"):
                assert header in text
    assert doc_status["final"] > doc_status["preliminary"] > 0


def test_practitioners_are_a_fixed_set_with_stable_ids_covering_five_roles() -> None:
    assert len({p.id for p in PRACTITIONERS}) == len(PRACTITIONERS)
    assert {p.role for p in PRACTITIONERS} == {
        "general practitioner",
        "cardiologist",
        "endocrinologist",
        "diabetes specialist nurse",
        "practice nurse",
    }
    bundle = generate_patient(4, seed=99, today=TODAY)
    in_bundle = {r["id"] for r in resources(bundle, "Practitioner")}
    assert in_bundle <= {p.id for p in PRACTITIONERS}
    roles = resources(bundle, "PractitionerRole")
    assert all(r["practitioner"]["reference"].removeprefix("urn:uuid:") in in_bundle for r in roles)


START = re.compile(
    r"(?:^- |; )(?:Start|Commence|Started|Initiate|Restart|start) ([a-z][a-z ]*?) (\d+(?:\.\d+)?) (mg|units)",
    re.M,
)


def test_a_drug_started_in_a_note_is_ordered_in_that_encounter(cohort: list[Bundle]) -> None:
    checked = 0
    for bundle in cohort:
        by_encounter: dict[str, set[str]] = {}
        for med in resources(bundle, "MedicationRequest"):
            if "encounter" in med:
                by_encounter.setdefault(med["encounter"]["reference"], set()).add(
                    med["medicationCodeableConcept"]["text"]
                )
        for doc in resources(bundle, "DocumentReference"):
            enc = doc["context"]["encounter"][0]["reference"]
            for name, dose, unit in START.findall(section(note_text(doc), "PLAN")):
                checked += 1
                assert f"{name} {dose} {unit}" in by_encounter.get(enc, set())
    assert checked > N


def test_notes_quote_the_clinic_bp_with_only_occasional_transcription_slips(
    cohort: list[Bundle],
) -> None:
    match = total = 0
    for bundle in cohort:
        bp = clinic_bp(bundle)
        for doc in resources(bundle, "DocumentReference"):
            quoted = re.search(r"(\d{2,3})/(\d{2,3}) mmHg", section(note_text(doc), "EXAMINATION"))
            assert quoted is not None
            total += 1
            match += (int(quoted[1]), int(quoted[2])) == bp[
                doc["context"]["encounter"][0]["reference"]
            ]
    assert 0.9 < match / total < 1.0


def listed(doc: dict[str, Any]) -> Iterator[str]:
    for line in section(note_text(doc), "MEDICATIONS").splitlines():
        m = re.match(r"- ([a-z][a-z ]*?) \d", line)
        if m:
            yield m[1]


def test_medication_lists_name_ordered_drugs_and_sometimes_one_another_clinician_stopped(
    cohort: list[Bundle],
) -> None:
    stale = 0
    for bundle in cohort:
        meds = resources(bundle, "MedicationRequest")
        ordered = {m["medicationCodeableConcept"]["text"].rsplit(" ", 2)[0] for m in meds}
        for doc in resources(bundle, "DocumentReference"):
            day = doc["date"][:10]
            active = {
                m["medicationCodeableConcept"]["text"].rsplit(" ", 2)[0]
                for m in meds
                if m["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"][:10]
                <= day
                and m["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"].get(
                    "end", "9999"
                )[:10]
                >= day
            }
            for name in listed(doc):
                assert name in ordered
                stale += name not in active
    assert stale > 0


def test_notes_cite_other_clinicians_family_history_negations_and_plans(
    cohort: list[Bundle],
) -> None:
    text = "\n".join(note_text(d) for b in cohort[:80] for d in resources(b, "DocumentReference"))
    assert re.search(r"Seen by Dr \w+ in cardiology on .+?, who ", text)
    assert re.search(r"stopped the lisinopril because of a dry cough; started losartan 50 mg", text)
    assert "Family history:" in text
    assert re.search(r"\b(Denies|No) [a-z]", text)
    assert re.search(r"If BP remains above 1[45]0/90 at the next review, consider adding", text)
    assert re.search(r"Recheck HbA1c in 3 months \(due ", text)
    assert re.search(r"HbA1c recheck \(planned at the [\d-]+ review\): HbA1c \d", text)
    assert re.search(
        r"Restart metformin \d+ mg twice daily now that the symptoms have settled", text
    )
    assert "Refer to ophthalmology for retinal screening" in text
    assert re.search(r"Home BP: home readings \(n=\d+\) average \d+/\d+ mmHg", text)


def test_the_generator_never_imports_django() -> None:
    code = "import sys, datetime as d; from patients.cohort.generator import generate_patient; generate_patient(0, today=d.date(2026, 1, 1)); assert 'django' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(_repo_root()))


def _repo_root() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parents[2]


def test_fast_ids_equal_uuid5_of_seed_index_and_counter() -> None:
    import uuid

    from patients.cohort.generator import COHORT_NAMESPACE, _Ids

    ids = _Ids(5, 42)
    assert ids.next("obs") == str(uuid.uuid5(COHORT_NAMESPACE, "5/42/obs/1"))
    assert ids.next("enc") == str(uuid.uuid5(COHORT_NAMESPACE, "5/42/enc/2"))


def test_numerical_helpers_reject_out_of_range_inputs_naming_the_field() -> None:
    with pytest.raises(ValueError, match="creatinine_mg_dl"):
        ckd_epi_2021(0.0, 50, "male")
    with pytest.raises(ValueError, match="age"):
        creatinine_for_egfr(60.0, 5, "female")
    with pytest.raises(ValueError, match="ratio"):
        dose_factor(0.0)


def hba1c_percent(obs: dict[str, Any]) -> float:
    q = obs["valueQuantity"]
    return q["value"] if q["code"] == "%" else q["value"] * 0.09148 + 2.152


def test_starting_metformin_lowers_hba1c_by_close_to_the_hirst_2012_effect(
    cohort: list[Bundle],
) -> None:
    drops = []
    for bundle in cohort:
        starts = [
            dt.date.fromisoformat(m["authoredOn"][:10])
            for m in resources(bundle, "MedicationRequest")
            if m["medicationCodeableConcept"]["text"].startswith("metformin")
            and "priorPrescription" not in m
            and "encounter" in m
        ]
        if len(starts) != 1:
            continue
        a1c = sorted(
            (dt.date.fromisoformat(o["effectiveDateTime"][:10]), hba1c_percent(o))
            for o in resources(bundle, "Observation")
            if "4548-4" in codes(o)
        )
        before = [v for d, v in a1c if d <= starts[0]]
        after = [v for d, v in a1c if 60 <= (d - starts[0]).days <= 200]
        if before and after:
            drops.append(before[-1] - after[0])
    assert len(drops) >= 10
    # 500 mg twice daily is half the 2000 mg/day behind -1.12% (Hirst 2012): about -0.9% at
    # steady state, less the drift and the part of the effect not yet reached at the recheck.
    assert 0.4 < sum(drops) / len(drops) < 1.2


def test_bundles_do_not_depend_on_the_interpreter_hash_seed() -> None:
    import hashlib
    import json
    import os

    code = (
        "import hashlib, json, datetime as d; from patients.cohort.generator import generate_patient; "
        "print(hashlib.sha256(json.dumps(generate_patient(9, seed=2, today=d.date(2026, 6, 30)), "
        "sort_keys=True).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(_repo_root())}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()
    here = hashlib.sha256(
        json.dumps(generate_patient(9, seed=2, today=TODAY), sort_keys=True).encode()
    ).hexdigest()
    assert out == here


def _person_on(keys: list[str], **overrides: Any) -> Any:
    """A latent patient with no drift, on the given drugs from day 0."""
    import dataclasses
    import random

    from patients.cohort.generator import Episode, _make_person, drug_table

    base = _make_person(random.Random(1), TODAY, 2000)
    episodes = [Episode(drug_table()[k], 0, PRACTITIONERS[0], 0) for k in keys]
    fields = dict(
        sbp0=154.0, dbp0=97.0, sbp_slope=0.0, a1c0=8.6, a1c_drift=0.0, weight_drift=0.0, ldl0=186.0
    )
    return dataclasses.replace(base, episodes=episodes, **{**fields, **overrides})


def test_a_standard_dose_antihypertensive_lowers_sbp_by_the_law_2003_amount_over_weeks() -> None:
    person = _person_on(["lisinopril_10"])
    sbp_2wk, _ = person.bp_true(14)
    sbp, dbp = person.bp_true(120)
    assert 154 - sbp == pytest.approx(9.1, abs=0.2)
    assert 97 - dbp == pytest.approx(5.5, abs=0.2)
    assert 3 < 154 - sbp_2wk < 154 - sbp
    two, _ = _person_on(["lisinopril_10", "amlodipine_5"]).bp_true(120)
    assert 154 - two == pytest.approx(18.2, abs=0.4)  # classes add (Law 2003)


def test_metformin_at_full_dose_lowers_hba1c_by_1_1_percent_at_steady_state() -> None:
    person = _person_on(["metformin_1000"])
    assert 8.6 - person.a1c_true(365) == pytest.approx(1.12, abs=0.02)
    assert 8.6 - person.a1c_true(21) < 0.5


def test_a_moderate_intensity_statin_lowers_ldl_by_its_law_2003_fraction() -> None:
    person = _person_on(["atorvastatin_20"])
    assert person.ldl_true(90) / 186 == pytest.approx(1 - 0.43, abs=0.01)
    stopped = _person_on(["atorvastatin_20"])
    stopped.episodes[0].end = 90
    assert stopped.ldl_true(200) == pytest.approx(186, rel=0.01)


@pytest.mark.parametrize("seed", [1, 7])
def test_nothing_in_a_bundle_is_dated_after_today(seed: int) -> None:
    # Index 1609 of seed 1 once had an ACE-inhibitor cough dated after the end of its record.
    for index in [*range(150), 1609]:
        bundle = generate_patient(index, seed=seed, today=dt.date(2026, 11, 28))
        for entry in bundle["entry"]:
            resource = entry["resource"]
            for key in (
                "effectiveDateTime",
                "date",
                "authoredOn",
                "onsetDateTime",
                "issued",
                "recordedDate",
            ):
                value = resource.get(key)
                assert not value or value[:10] <= "2026-11-28", (
                    index,
                    resource["resourceType"],
                    key,
                    value,
                )
