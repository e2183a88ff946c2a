"""The ontology-built finding vocabulary and the way it is matched in clinical writing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nlp.pipeline import analyse
from nlp.types import Entity
from nlp.vocabulary import (
    _TOKEN,
    _word_form,
    merged_concepts,
    normalise_phrase,
    normalise_word,
)

DATA = Path(__file__).resolve().parents[2] / "nlp" / "data"


def _findings(text: str) -> list[Entity]:
    return [e for e in analyse(text).entities if e.label == "problem"]


def _concepts(text: str) -> list[str | None]:
    return [e.concept_id for e in _findings(text)]


@pytest.mark.parametrize(
    ("word", "form"),
    [
        ("Fevers", "fever"),
        ("oedema", "edema"),
        ("haemorrhages", "hemorrhage"),
        ("arteries", "artery"),
        ("abscesses", "abscess"),
        ("emboli", "embolus"),
        ("diabetes", "diabetes"),
        ("stenosis", "stenosis"),
        ("hematomas", "hematoma"),
        ("patient's", "patient"),
        ("arthritides", "arthritis"),
        ("testes", "testis"),
        ("hypokinesis", "hypokinesia"),
        ("arthritic", "arthritis"),
    ],
)
def test_it_normalises_case_plural_and_british_spelling(word: str, form: str) -> None:
    assert normalise_word(word) == form


def test_it_gives_every_spelling_and_number_of_a_finding_one_concept() -> None:
    ids = _concepts("Fevers. Fever. Oedema. Edema of the ankle. Palpitation. Palpitations.")
    assert ids[0] == ids[1] == "HP:0001945"
    assert ids[2] == ids[3]
    assert ids[4] == ids[5] == "HP:0001962"


def test_it_keeps_span_concept_id_name_and_code_on_each_entity() -> None:
    (entity,) = _findings("She reports shortness of breath.")
    assert (entity.text, entity.start, entity.end) == ("shortness of breath", 12, 31)
    assert entity.concept_id == "HP:0002094"
    assert entity.normalized == "dyspnoea"
    assert entity.code == "267036007"


@pytest.mark.parametrize(
    ("text", "concept_id"),
    [
        ("Complains of SOB.", "HP:0002094"),
        ("Positive for N/V.", "HP:0002017"),
        ("Denies CP.", "HP:0100749"),
        ("Progressive DOE.", "HP:0002875"),
        ("History of HTN and DM.", "DOID:10763"),
        ("History of MS, on interferon.", "DOID:2377"),
        ("He has BPH.", "HP:0008711"),
        ("Regular rhythm, no murmurs, S3 or S4.", "HP:0031658"),
        ("Complains of GI upset with the iron.", "HP:0410281"),
        ("Ultrasound shows submucosal fibroids.", "DOID:13223"),
        ("He is a habitual snorer with mouth breathing.", "HP:6000463"),
        ("She found a lump in her left breast.", "SCTID:4147007"),
    ],
)
def test_it_reads_common_clinical_abbreviations(text: str, concept_id: str) -> None:
    assert concept_id in _concepts(text)


@pytest.mark.parametrize(
    "text",
    [
        "Morphine MS 4 mg IV every four hours.",
        "MS: alert and oriented.",
        "PT/INR within normal limits.",
        "PT twice a week for the knee.",
        "Saturation 98% on RA.",
        "CP angle is clear.",
        "Sacral nerve S3 and S4 roots.",
        "Ca 9.8, magnesium 2.0.",
        "Her CA 125 was 14.",
        "Paid a lump sum.",
        "She has had a lump sensation in the throat since March.",
    ],
)
def test_it_does_not_take_abbreviations_in_their_other_meanings(text: str) -> None:
    assert _findings(text) == []


def test_it_attaches_anatomical_modifiers_to_the_head_finding() -> None:
    (entity,) = _findings("Left lower extremity edema, 2+.")
    assert entity.text == "Left lower extremity edema"
    assert entity.concept_id == "HP:0000969"
    assert entity.attributes["site"] == "Left lower extremity"


def test_it_attaches_a_site_written_after_the_finding_and_finds_the_specific_concept() -> None:
    (entity,) = _findings("He has pain in the chest on exertion.")
    assert entity.text == "pain in the chest"
    assert entity.normalized == "chest pain"


def test_cancer_written_ca_after_its_organ_takes_the_organ_as_site() -> None:
    (entity,) = _findings("Family history of colon CA in her father.")
    assert entity.text == "colon CA"
    assert entity.concept_id == "DOID:162"
    assert entity.attributes["site"] == "colon"


def test_disk_and_toenail_are_read_as_the_ontologies_disc_and_nail() -> None:
    assert _concepts("Pale optic disks bilaterally.") == ["HP:0000543"]
    assert _concepts("Ingrown toenail on the right.") == ["HP:0012710"]


def test_a_finding_named_only_to_say_what_a_product_is_for_is_no_finding() -> None:
    (entity,) = _findings("If you have dandruff, use a dandruff shampoo.")
    assert entity.text == "dandruff"
    assert entity.start == 12


def test_it_reads_difficulty_with_a_function_named_by_its_noun() -> None:
    (entity,) = _findings("She has difficulty with concentration at school.")
    assert entity.text == "difficulty with concentration"
    assert _findings("He had difficulty with the insurance company.") == []


def test_it_does_not_take_a_side_alone_for_a_site() -> None:
    (entity,) = _findings("Swelling of the left side of the tongue.")
    assert entity.text == "Swelling"


def test_it_reads_le_edema_and_abbreviated_sites() -> None:
    (entity,) = _findings("Trace LE edema bilaterally.")
    assert entity.text == "LE edema"


def test_the_longest_match_wins() -> None:
    (entity,) = _findings("She has chronic kidney disease.")
    assert entity.text == "chronic kidney disease"
    (staged,) = _findings("Stage 3 chronic kidney disease.")
    assert staged.text == "Stage 3 chronic kidney disease"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("He reports presyncopal symptoms.", "presyncopal symptoms"),
        ("Two syncopal episodes last week.", "syncopal episodes"),
        ("Degenerative changes at C5-6.", "Degenerative changes"),
        ("He is constipated and cyanotic.", "constipated"),
        ("Mild vibratory sensation loss in the toes.", "sensation loss"),
        ("Progressive memory impairment.", "memory impairment"),
        ("Small T2 signal abnormalities.", "signal abnormalities"),
        ("She has difficulty swallowing solids.", "difficulty swallowing"),
        ("He is hypoxic on room air.", "hypoxic"),
        ("She was febrile overnight.", "febrile"),
        ("Thrombosed left forearm loop graft.", "Thrombosed"),
        ("He is ataxic and dysarthric.", "dysarthric"),
        ("Awoke with an occipital HA and nausea.", "HA"),
    ],
)
def test_it_finds_kinds_of_symptoms_and_adjective_forms(text: str, found: str) -> None:
    assert found in [e.text for e in _findings(text)]


@pytest.mark.parametrize(
    "text",
    [
        "Her symptoms improved.",
        "We discussed dietary changes.",
        "He is having symptoms at night.",
        "The fluid was aspirated.",
        "Estimated blood loss was minimal.",
        "On dilated fundus examination the discs are sharp.",
    ],
)
def test_it_does_not_take_generic_words_for_findings(text: str) -> None:
    assert _findings(text) == []


def test_the_vocabulary_file_is_well_formed_and_small() -> None:
    path = DATA / "finding_vocabulary.csv"
    assert path.stat().st_size < 5_000_000
    seen: dict[str, str] = {}
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) > 20_000
    for row in rows:
        assert row["concept_id"].split(":")[0] in {"HP", "DOID", "SYMP", "SCTID", "TP"}
        assert row["name"] and row["source"]
        assert not row["snomed"] or row["snomed"].isdigit()
        for term in row["terms"].split("|"):
            bare = term.split("^")[0]
            key = bare if bare.startswith("=") else _built_form(bare)
            assert seen.setdefault(key, row["concept_id"]) == row["concept_id"], term


def _built_form(text: str) -> str:
    # The form the file was built on: the matching form without reading like words as one
    # ("renal" and "kidney" stay apart), so each wording as written belongs to one concept.
    return " ".join(_word_form(t) for t in _TOKEN.findall(text))


def test_wordings_that_differ_only_in_like_words_are_matched_as_the_first_concept() -> None:
    # "liver cirrhosis" and "hepatic cirrhosis" are two wordings, of two concepts, in the
    # file; the matcher reads them as one, and the concept that comes first keeps both.
    first = next(e for e in _findings("Liver cirrhosis.")).concept_id
    assert next(e for e in _findings("Hepatic cirrhosis.")).concept_id == first


def test_every_abbreviation_names_a_concept_of_the_vocabulary_and_a_source() -> None:
    # a concept the build merged into another (its same_as) counts: the matcher reads the
    # abbreviation as the concept it was merged into
    with (DATA / "finding_vocabulary.csv").open(encoding="utf-8") as fh:
        ids = {row["concept_id"] for row in csv.DictReader(fh)} | set(merged_concepts())
    with (DATA / "abbreviations.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            assert row["concept_id"] in ids, row["abbreviation"]
            assert row["source"]


def test_an_abbreviation_of_a_merged_concept_names_the_concept_it_was_merged_into() -> None:
    merged = merged_concepts()
    assert merged["DOID:3021"] == "HP:0001919"  # acute kidney failure, in acute kidney injury
    assert _concepts("Admitted with ARF.") == ["HP:0001919"]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Decreased breath sounds at the left base.", "Decreased breath sounds"),
        ("He has absent pedal pulses bilaterally.", "absent pedal pulses"),
        ("Elevated troponins overnight.", "Elevated troponins"),
        ("Poor sleep and low mood.", "Poor sleep"),
        ("Three loose bowel movements a day.", "loose bowel movements"),
        ("CT shows dilated bowel loops.", "dilated bowel loops"),
    ],
)
def test_it_reads_an_abnormal_qualifier_with_what_it_qualifies_as_a_finding(
    text: str, found: str
) -> None:
    assert found in [e.text for e in _findings(text)]


@pytest.mark.parametrize(
    "text",
    [
        "We decreased the dose.",
        "Flow increased slightly at rest.",
        "The palate elevated symmetrically.",
        "Lisinopril was increased to 20 mg.",
    ],
)
def test_it_does_not_read_a_change_of_treatment_or_a_normal_movement_as_a_finding(
    text: str,
) -> None:
    assert _findings(text) == []


def test_a_finding_read_by_its_form_never_takes_a_drugs_place() -> None:
    entities = analyse("Increased lisinopril to 20 mg daily.").entities
    assert [e.label for e in entities if e.text.lower().startswith("lisinopril")] == ["medication"]
    assert not [e for e in entities if e.label == "problem"]


def test_every_term_of_the_projects_lexicons_survives_into_the_vocabulary() -> None:
    have = set()
    with (DATA / "finding_vocabulary.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for term in row["terms"].split("|"):
                bare = term.split("^")[0]
                have.add(bare if bare.startswith("=") else normalise_phrase(bare))
    for name in ("problems.csv", "problems_added.csv"):
        with (DATA / name).open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                exact = row["case_sensitive"] == "1"
                key = "=" + row["term"].upper() if exact else normalise_phrase(row["term"])
                assert key in have, row["term"]


def test_a_minus_sign_in_parentheses_negates_a_review_of_systems_list() -> None:
    findings = _findings("Constitutional: (-) fever, headache, nausea.")
    assert [(e.text, e.negated) for e in findings] == [
        ("fever", True),
        ("headache", True),
        ("nausea", True),
    ]


@pytest.mark.parametrize(
    ("text", "concept_id"),
    [
        ("Non Hodgkin lymphoma in 2010.", "HP:0012539"),
        ("Non-Hodgkin lymphoma in 2010.", "HP:0012539"),
        ("Paroxysmal afib.", "HP:0005110"),
        ("Paroxysmal a-fib.", "HP:0005110"),
    ],
)
def test_it_matches_a_wording_with_or_without_its_hyphen(text: str, concept_id: str) -> None:
    assert concept_id in _concepts(text)


@pytest.mark.parametrize(
    ("text", "concept_id"),
    [
        ("He had an infection of the urinary tract.", "HP:0000010"),
        ("There was a change in his voice.", "HP:0001618"),
        ("Cancer of the breast was diagnosed in 2001.", "DOID:1612"),
        ("Fracture of the femur.", "HP:0031846"),
        ("Cystoscopy showed trabeculation throughout the bladder.", "HP:0032465"),
    ],
)
def test_it_reads_a_finding_written_with_of_or_in_in_the_other_word_order(
    text: str, concept_id: str
) -> None:
    assert _concepts(text) == [concept_id]


@pytest.mark.parametrize(
    "text",
    [
        "The nature of the procedure was explained.",
        "She was placed in the supine position.",
        "The risk of the operation was discussed.",
    ],
)
def test_turning_a_phrase_round_finds_nothing_the_vocabulary_does_not_name(text: str) -> None:
    assert _findings(text) == []


def test_it_reads_discharge_from_the_body_but_not_from_hospital() -> None:
    assert [e.text for e in _findings("No drainage or discharge. Purulent discharge.")] == [
        "drainage",
        "discharge",
        "Purulent discharge",
    ]
    assert _findings("Seen at discharge; discharge summary dictated; discharge tomorrow.") == []


def test_a_word_coordinated_with_a_finding_takes_its_qualifier() -> None:
    found = _findings("Urinary urgency and frequency.")
    assert [(e.text, e.normalized) for e in found] == [
        ("Urinary urgency", "urinary urgency"),
        ("frequency", "urinary frequency"),
    ]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Flat affect and poor insight.", "Flat affect"),
        ("There was no evidence of incoherence.", "incoherence"),
        ("The EEG shows diffuse slowing.", "diffuse slowing"),
        ("Left temporal sharp waves.", "sharp waves"),
        ("He fell down 20 steps.", "fell"),
        ("Mild thinning of the cortex.", "thinning"),
        ("No reversible defect on perfusion imaging.", "reversible defect"),
        ("Symptoms of flu for two days.", "flu"),
    ],
)
def test_it_reads_mental_status_eeg_and_bare_head_findings(text: str, found: str) -> None:
    assert found in [e.text for e in _findings(text)]


@pytest.mark.parametrize(
    "text",
    [
        "He fell asleep during the study.",
        "Her hemoglobin fell to 8.",
        "Sponge, needle and sharps counts were correct.",
        "Tongue protrusion is midline.",
    ],
)
def test_it_does_not_take_fell_or_sharps_in_their_other_meanings(text: str) -> None:
    assert _findings(text) == []


def test_it_reads_valve_regurgitation_in_an_echo_report_but_not_mr_imaging() -> None:
    found = _findings("Echo shows mild MS and MR. No significant AI, trace TR.")
    assert [(e.text, e.concept_id, e.negated) for e in found] == [
        ("MR", "HP:0001653", False),
        ("AI", "HP:0001659", True),
        ("TR", "HP:0005180", True),
    ]
    assert _findings("MR angiography of the neck; MR imaging of the knee; MR #12345.") == []


def test_it_reads_the_plural_of_an_upper_case_abbreviation() -> None:
    (entity,) = _findings("She has had a history of TIAs in the past.")
    assert (entity.text, entity.start, entity.end, entity.concept_id) == (
        "TIAs",
        25,
        29,
        "HP:0002326",
    )


@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        ("LV ejection fraction 10% with global hypokinesis.", "hypokinesis", "HP:0002375"),
        ("Small pericardial effusion with no tamponade.", "tamponade", "HP:0033415"),
        ("There were no papillary tumors or stones inside the bladder.", "stones", "HP:0034368"),
        ("His episodes consist of facial twitching.", "twitching", "HP:0002380"),
        ("No drift or Romberg sign.", "drift", "TP:pronator-drift"),
    ],
)
def test_it_reads_a_finding_written_short_in_its_context(
    text: str, found: str, concept_id: str
) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.concept_id == concept_id
    assert text[entity.start : entity.end] == found


@pytest.mark.parametrize(
    "text",
    [
        "A balloon tamponade was placed in the uterus.",
        "He weighs 12 stone.",
        "There were no stones in the gallbladder or the common bile duct.",
        "The signal showed baseline drift.",
    ],
)
def test_it_does_not_take_short_forms_in_their_other_meanings(text: str) -> None:
    assert _findings(text) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("There was an increase in arterial pressure.", "increase in arterial pressure"),
        ("Labs showed no elevation of white count.", "elevation of white count"),
        ("There was a drop in hemoglobin from 12 to 9.", "drop in hemoglobin"),
        ("EKG showed no significant ST-T wave changes.", "ST-T wave changes"),
        ("Rule out generalized diverticular change.", "diverticular change"),
        ("3. Mild cognitive slowing (290.0).", "cognitive slowing"),
        ("CT showed a redundant sigmoid colon.", "redundant sigmoid colon"),
    ],
)
def test_it_reads_a_change_in_a_measured_quantity_and_other_changes(text: str, found: str) -> None:
    (entity,) = [e for e in _findings(text) if e.text == found]
    assert text[entity.start : entity.end] == found


@pytest.mark.parametrize(
    "text",
    [
        "Elevation of the leg was advised.",
        "Closed reduction of the fracture was done.",
        "An increase in the dose was discussed.",
        "The EF was moderately reduced with near normal thickening.",
        "There were similar changes in the other limb.",
    ],
)
def test_it_does_not_read_a_change_of_position_or_treatment_as_a_finding(text: str) -> None:
    assert all(
        not e.text.lower().startswith(("elevation", "increase", "near", "similar"))
        for e in _findings(text)
    )


@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        ("She reports feelings of guilt.", "feelings of guilt", None),
        ("She has a positive Lachman's exam.", "positive Lachman's exam", None),
        ("There are no peritoneal signs.", "peritoneal signs", None),
        ("As a child she had a history of cutting behaviors.", "cutting behaviors", None),
        ("We had an increasing oxygen requirement.", "increasing oxygen requirement", None),
        ("Affect is irritated, angry, depressed.", "angry", "HP:0031473"),
        ("He made a suicide attempt at age 17.", "suicide attempt", "HP:5200330"),
        ("We need to worry about DIC.", "DIC", "HP:0005521"),
        ("Risks include adverse reaction to medication.", "adverse reaction", "HP:0020172"),
    ],
)
def test_it_reads_reported_feelings_positive_signs_and_kinds_of_behaviour(
    text: str, found: str, concept_id: str | None
) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.concept_id == concept_id
    assert text[entity.start : entity.end] == found


@pytest.mark.parametrize(
    "text",
    [
        "She received Lovenox for DVT prophylaxis.",
        "The patient needs hepatitis A vaccination.",
        "Deep vein thrombosis prophylaxis with TED hose.",
        "Vital signs are stable.",
        "She has been concerned about the patient's behavior.",
    ],
)
def test_a_finding_named_for_its_prevention_or_a_routine_heading_is_not_one(text: str) -> None:
    assert _findings(text) == []


@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        ("He never had blood in his urine before.", "blood in his urine", "HP:0000790"),
        ("He had an incidental PSA elevation of 4.0.", "PSA elevation", None),
        ("The stress EKG showed inverted T wave from V4 to V6.", "inverted T wave", None),
        ("Sleep alteration because of pain.", "Sleep alteration", None),
        ("The testicle was filled with pus.", "pus", None),
        ("The fistulous tract was excised.", "fistulous tract", None),
        ("Agitation in the setting of misuse of prescribed opiates.", "misuse", None),
        ("No Kernig's or Brudzinski sign.", "Kernig's or Brudzinski sign", None),
        ("She became very orthostatic.", "orthostatic", "HP:0001278"),
        ("Left temporal sharps occurring infrequently.", "sharps", "TP:sharp-waves"),
        ("His mood/affect became more labile.", "labile", "TP:emotional-lability"),
        ("The patient is drowsy and confused.", "drowsy", "HP:0002329"),
        ("There was no evidence of self-injury, suicide, or violence.", "suicide", "HP:5200330"),
    ],
)
def test_it_reads_lay_word_orders_bare_findings_and_words_said_of_a_mood_or_an_eeg(
    text: str, found: str, concept_id: str | None
) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.concept_id == concept_id
    assert text[entity.start : entity.end] == found


@pytest.mark.parametrize(
    "text",
    [
        "Neck: Negative Spurling sign.",
        "Romberg sign negative.",
        "Left forearm and left upper arm fistula placements.",
        "Orthostatic vital signs were taken.",
        "This awake/alert/drowsy EEG is normal.",
        "He was scheduled for cataract extraction.",
    ],
)
def test_it_does_not_read_a_negative_test_an_access_fistula_or_an_operation_as_a_finding(
    text: str,
) -> None:
    assert _findings(text) == []


@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        ("The left main had a retrograde dissection.", "dissection", "HP:0005294"),
        ("A head CT then showed SAH around her aneurysm.", "SAH", "HP:0002138"),
        ("Parents noted the patient to be quite dusky.", "dusky", "HP:0000961"),
        ("There was some ambivalence, guilt, and self-derogatory thoughts.", "guilt", "HP:6000011"),
        ("We incised down to some scarred gluteus maximus muscle.", "scarred", "HP:0100699"),
        ("Ruptured globe with corneal laceration.", "Ruptured globe", None),
        ("Stroke with fluctuating mental status.", "fluctuating mental status", None),
        ("The penis has no plaques.", "plaques", None),
        ("There are no neurocutaneous stigmata.", "stigmata", None),
    ],
)
def test_it_reads_dissection_and_other_short_or_qualified_findings(
    text: str, found: str, concept_id: str | None
) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.concept_id == concept_id
    assert text[entity.start : entity.end] == found


@pytest.mark.parametrize(
    "text",
    [
        "Blunt dissection was carried down to the fascia.",
        "Dissection was continued laterally to the vein.",
        "A modified radical neck dissection was performed.",
    ],
)
def test_it_does_not_read_a_surgical_dissection_as_a_finding(text: str) -> None:
    assert _findings(text) == []


@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        ("The patient's mother is arthritic.", "arthritic", "HP:0001369"),
        ("She has no trouble with frequency or urgency.", "frequency", "HP:0100515"),
        ("Previous problems with aspiration.", "aspiration", "HP:0002835"),
        ("He denies chills or blood per rectum.", "blood per rectum", "HP:0002573"),
        ("There was a 1-cm endocervical polyp.", "polyp", None),
        ("Recent mental status changes.", "mental status changes", None),
    ],
)
def test_it_reads_itic_adjectives_and_urinary_or_airway_words_in_context(
    text: str, found: str, concept_id: str | None
) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.concept_id == concept_id
    assert text[entity.start : entity.end] == found


@pytest.mark.parametrize(
    "text",
    [
        "After negative aspiration 3 cc of dye was injected.",
        "Respiratory frequency was 20.",
        "History of cholesteatoma removal from the right ear.",
    ],
)
def test_it_does_not_read_a_needle_aspiration_a_rate_or_an_operation_as_a_finding(
    text: str,
) -> None:
    assert _findings(text) == []


@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        ("No LAD, no JVD, and no bruits.", "LAD", "HP:0002716"),
        ("He had some subcostal retractions.", "subcostal retractions", "HP:0030864"),
        ("Her skin is kind of peeling a little bit.", "peeling", "HP:0040189"),
        ("Meconium stained placenta was delivered.", "Meconium stained", "HP:0012420"),
        ("It made her feel much more stiff.", "stiff", "HP:0003552"),
        ("No exoluminal leakage is identified.", "leakage", "TP:leak"),
        ("There was some mild psychomotor excitement.", "psychomotor excitement", None),
    ],
)
def test_it_reads_examination_shorthand_and_adjectives_in_context(
    text: str, found: str, concept_id: str | None
) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.concept_id == concept_id
    assert text[entity.start : entity.end] == found


@pytest.mark.parametrize(
    "text",
    [
        "90% stenosis of the proximal LAD.",
        "A stiff wire was placed.",
        "The membrane was peeling off.",
    ],
)
def test_it_does_not_read_the_lad_artery_or_a_stiff_wire_as_a_finding(text: str) -> None:
    assert all(e.text not in ("LAD", "stiff", "peeling") for e in _findings(text))


@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        ("There is no osteochondral defect.", "osteochondral defect", None),
        ("Slowing in the right frontal head region.", "Slowing", "TP:diffuse-slowing"),
        ("Septum deviated to the left, clear drainage.", "drainage", "TP:abnormal-discharge"),
        ("She denies any lumps in her body.", "lumps", "SCTID:4147007"),
        ("This child is irritable and fussy.", "fussy", "HP:0000737"),
        ("He became altered and deteriorated.", "altered", "HP:0001289"),
        (
            "Type 2 diabetic with poorly controlled blood sugars.",
            "poorly controlled blood sugars",
            None,
        ),
        ("Large inferior turbinates.", "Large inferior turbinates", None),
        ("Adjacent subarachnoid blood.", "subarachnoid blood", None),
    ],
)
def test_it_reads_defects_eeg_slowing_drainage_and_lay_words(
    text: str, found: str, concept_id: str | None
) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.concept_id == concept_id
    assert text[entity.start : entity.end] == found


@pytest.mark.parametrize(
    "text",
    [
        "I then closed the mesenteric defect with sutures.",
        "The heart rate was slowing.",
        "A tube was attached to the bulb for drainage.",
        "Percutaneous drainage was arranged.",
    ],
)
def test_it_does_not_read_a_closed_defect_a_slowing_rate_or_a_drain_as_a_finding(text: str) -> None:
    assert _findings(text) == []


@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        (
            "Holter showed 9 atrial premature contractions.",
            "atrial premature contractions",
            "HP:0006699",
        ),
        ("Anterior chambers reveal no cells or flare.", "flare", "HP:0031616"),
        ("Anterior chambers reveal no cells or flare.", "cells", "HP:0025560"),
        (
            "Mild prominence of the gallbladder with pericholecystic fluid.",
            "pericholecystic fluid",
            None,
        ),
        ("No evidence of extra-axial collection.", "extra-axial collection", None),
        ("Admitted for dizziness and disequilibrium.", "disequilibrium", None),
    ],
)
def test_it_reads_modifiers_in_either_order_and_slit_lamp_and_imaging_findings(
    text: str, found: str, concept_id: str | None
) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.concept_id == concept_id
    assert text[entity.start : entity.end] == found


@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        # read closed as the vocabulary's "sacroiliitis"
        ("Sacro-iliitis (720.2), lumbo-sacral dysfunction.", "Sacro-iliitis", "HP:0012317"),
        ("No scales, no excoriations, and no palpable erythema.", "excoriations", None),
        ("No chronic ulcers or persistent itch.", "itch", "HP:0000989"),
    ],
)
def test_it_reads_hyphenated_medical_words_excoriations_and_itch(
    text: str, found: str, concept_id: str | None
) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.concept_id == concept_id
    assert text[entity.start : entity.end] == found


@pytest.mark.parametrize(
    ("word", "form"),
    [
        ("localised", "localized"),
        ("hospitalisation", "hospitalization"),
        ("anaemic", "anemic"),
        ("leucocytosis", "leukocytosis"),
        ("Fuchs'", "fuch"),
        ("gynaecomastia", "gynecomastia"),
    ],
)
def test_it_normalises_ise_endings_possessives_and_more_british_spellings(
    word: str, form: str
) -> None:
    assert normalise_word(word) == form


# Wordings the vocabulary builder derives from the ontologies' own terms
# (scripts/build_vocabulary.py: variants, adjectives, acronym-named wordings): each a real
# sentence in, the entity with its span and concept out.
@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        # "X in/of the Y" turned round: HPO's "Ringing in the ears".
        ("He complains of his ears ringing at night.", "ears ringing", "HP:0000360"),
        # "disease" / "disorder" / "syndrome" for one another: DO's "Parkinson's disease".
        ("Known Parkinson's disorder, on carbidopa.", "Parkinson's disorder", "DOID:14330"),
        # The possessive written or left out: DO's "Fuchs' endothelial dystrophy".
        ("Early Fuchs endothelial dystrophy in both eyes.", "Fuchs endothelial dystrophy",
         "DOID:11555"),
        # An acronym that names the disease, matched as written: DO's "VACTERL association".
        ("He also has VACTERL association with hydrocephalus.", "VACTERL association",
         "DOID:14679"),
        # "-ia" nouns and their "-ic" adjectives: HPO's "Dystonia".
        ("She has been dystonic since the injury.", "dystonic", "HP:0001332"),
        # A quality and what has it: HPO's "Restlessness".
        ("He was restless overnight.", "restless", "HP:0000711"),
        # British spelling with "-ise": "localised oedema" is edema.
        ("There is localised oedema of the ankle.", "oedema of the ankle", "HP:0000969"),
        ("He was anaemic on admission.", "anaemic", "HP:0001903"),
    ],
)  # fmt: skip
def test_it_reads_wordings_derived_from_the_ontology_terms(
    text: str, found: str, concept_id: str
) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.concept_id == concept_id
    assert text[entity.start : entity.end] == found


@pytest.mark.parametrize(
    "text",
    [
        "Abdomen: Soft, non-tender, non-distended.",
        "Hypertonic saline was given.",
        "The skin was red and cold to touch.",
        "He charged the phone.",
    ],
)
def test_a_normal_examination_or_an_everyday_word_is_not_a_derived_finding(text: str) -> None:
    assert _findings(text) == []


# Symptoms from the Symptom Ontology; one named by an HPO synonym joins that HPO concept.
@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        ("Neck supple, no meningismus.", "meningismus", "SYMP:0000552"),
        ("She has had a dry hacking cough for a week.", "dry hacking cough", "SYMP:0000259"),
        ("He reports occasional belching after meals.", "belching", "SYMP:0000290"),
    ],
)
def test_it_reads_symptoms_of_the_symptom_ontology(text: str, found: str, concept_id: str) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.concept_id == concept_id


def test_a_symptom_ontology_term_for_an_hpo_finding_is_the_same_concept() -> None:
    with (DATA / "finding_vocabulary.csv").open(encoding="utf-8") as fh:
        fever = next(r for r in csv.DictReader(fh) if r["name"] == "fever")
    assert fever["concept_id"] == "HP:0001945"
    assert any(i.startswith("SYMP:") for i in fever["same_as"].split())


@pytest.mark.parametrize(
    "text",
    [
        "She is afebrile and her blood pressure is stable.",
        "He was discharged home; discharge instructions were given.",
        "At this time, there are no General Surgery issues.",
        "The foot was elevated and the dose was decreased.",
        "There was no change in blood pressure.",
        "Vital signs: Temperature 98.6, pulse 80.",
        "She was given the migraine cocktail.",
        "He will be given antibiotics and pain medicines.",
        "Corneal epithelium is intact with normal tear film.",
        "She has dark skin and dark hair.",
        "Normal thickening of the left ventricle.",
        "Blood cultures were negative and the urine was negative for nitrites.",
    ],
)
def test_it_does_not_read_normal_states_context_words_positioning_or_modifiers_as_findings(
    text: str,
) -> None:
    assert _findings(text) == []


# A finding written as a predicate, a function's "issues" or "change", a fever written as a
# temperature; each with its assertion.
@pytest.mark.parametrize(
    ("text", "found", "negated"),
    [
        ("Her energy level is extremely low.", "energy level is extremely low", False),
        ("His desire has been slightly decreased.", "desire has been slightly decreased", False),
        ("Her TSH was quite elevated.", "TSH was quite elevated", False),
        ("She has a history of swallowing issues.", "swallowing issues", False),
        ("He has had balance issues since the fall.", "balance issues", False),
        ("He denies any change in bowel habits.", "change in bowel habits", True),
        ("No changes in mood or behavior.", "changes in mood", True),
        ("She had a temperature of 100.7 after delivery.", "temperature of 100.7", False),
        ("Temperature 38.6 C.", "Temperature 38.6 C", False),
        ("The infant developed fussiness and vomiting.", "fussiness", False),
        ("He reports black stools and dark urine.", "black stools", False),
        ("There was thick meconium at delivery.", "thick meconium", False),
        (
            "Her potassium was dramatically elevated at 7.",
            "potassium was dramatically elevated",
            False,
        ),
        ("There is mild prominence of the gallbladder.", "prominence of the gallbladder", False),
        (
            "Partial effacement of the subarachnoid space.",
            "effacement of the subarachnoid space",
            False,
        ),
        ("Slowing of motor skills and cognitive function.", "Slowing of motor skills", False),
        ("He has limitations to extension at the IP joint.", "limitations to extension", False),
        ("Slightly pale conjunctivae, icteric sclerae.", "pale conjunctivae", False),
        ("Slightly pale conjunctivae, icteric sclerae.", "icteric sclerae", False),
        ("Her visual decline is caused by cataracts.", "visual decline", False),
        ("Her gait hesitancy persisted for years.", "gait hesitancy", False),
        ("Urinalysis shows positive nitrites and 2+ bacteria.", "positive nitrites", False),
        ("Prenatal care complicated by GBS screen positive.", "GBS screen positive", False),
        ("Blood cultures were positive for staphylococcus.", "Blood cultures were positive", False),
        ("There is no narrowing of the canal.", "narrowing of the canal", True),
    ],
)
def test_it_reads_predicates_function_issues_changes_and_fevers(
    text: str, found: str, negated: bool
) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.negated is negated


def test_a_recorded_fever_is_the_fever_concept_and_keeps_its_measurement() -> None:
    entities = analyse("She had a temperature of 101.5 at home.").entities
    fever = next(e for e in entities if e.label == "problem")
    measurement = next(e for e in entities if e.label == "measurement")
    assert (fever.normalized, fever.concept_id) == ("fever", "HP:0001945")
    assert (fever.start, fever.end) == (measurement.start, measurement.end)


def test_no_change_in_a_finding_still_asserts_the_finding() -> None:
    (pain,) = _findings("There were no changes in his chest pain.")
    assert pain.text == "chest pain" and not pain.negated


@pytest.mark.parametrize(
    ("word", "form"),
    [
        ("renal", "kidney"),
        ("Biliary", "bile"),
        ("ductal", "duct"),
        ("testicle", "testis"),
        ("testicular", "testis"),
        ("respirations", "breathing"),
        ("spells", "episode"),
        ("attacks", "episode"),
        ("dilation", "dilatation"),
    ],
)
def test_it_reads_an_organs_adjective_as_its_noun_and_like_head_words_as_one(
    word: str, form: str
) -> None:
    assert normalise_word(word) == form


@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        # an ontology wording with the noun, written with the adjective, and the other way
        ("There was intrahepatic biliary ductal dilatation.", "biliary ductal dilatation", None),
        ("He has renal stones.", "renal stones", None),
        ("She reports testicle pain.", "testicle pain", None),
        ("The infant had periodic breathing.", "periodic breathing", "HP:0012196"),
        ("He continues to have crying spells.", "crying spells", "HP:0033705"),
    ],
)
def test_a_wording_matches_with_an_organs_adjective_or_noun_and_like_head_words(
    text: str, found: str, concept_id: str | None
) -> None:
    entity = next(e for e in _findings(text) if found in e.text)
    assert entity.concept_id is not None
    if concept_id is not None:
        assert entity.concept_id == concept_id


def test_an_organs_adjective_and_noun_give_one_concept() -> None:
    kidney, renal = _concepts("Kidney stones. Renal stones.")
    assert kidney == renal is not None


@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        ("She felt light-headed on standing.", "light-headed", "SCTID:404640003"),
        ("She felt light headed on standing.", "light headed", "SCTID:404640003"),
        ("He gets head aches daily.", "head aches", "HP:0002315"),
        ("Occasional heart burn after meals.", "heart burn", "HP:0002020"),
    ],
)
def test_a_one_word_finding_written_open_or_hyphenated_is_found(
    text: str, found: str, concept_id: str
) -> None:
    (entity,) = _findings(text)
    assert (entity.text, entity.concept_id) == (found, concept_id)


def test_two_words_that_make_no_finding_word_together_are_left_alone() -> None:
    assert _findings("He went in to the room and sat over the weight bench.") == []


@pytest.mark.parametrize(
    ("text", "concept_id"),
    [
        ("History of PTSD and ADHD.", "DOID:2055"),
        ("Admitted with an SBO.", "HP:0005214"),
        ("Echo shows a small PFO.", "HP:0001655"),
        ("Runs of NSVT on telemetry.", "HP:0004756"),
        ("Known HCV, treated.", "DOID:1883"),
        ("He has a 5 cm AAA.", "HP:0005112"),
        ("Prior URI two weeks ago.", "HP:0002788"),
    ],
)
def test_it_reads_more_clinical_abbreviations(text: str, concept_id: str) -> None:
    assert concept_id in _concepts(text)


@pytest.mark.parametrize(
    "text",
    [
        "VT-1 zone 165 beats per minute.",
        "Burlington, VT 05401.",
        "The proximal PDA was stented.",
        "HCV antibody was sent.",
        "She uses HEARING AIDS.",
        "PALS and ALS protocols were followed.",
        "GAD 65 antibodies were negative.",
        "OCD of the medial femoral condyle was drilled.",
    ],
)
def test_it_does_not_take_the_new_abbreviations_in_their_other_meanings(text: str) -> None:
    assert _findings(text) == []


@pytest.mark.parametrize(
    ("text", "found", "concept_id"),
    [
        ("He feels shaky and queasy.", "shaky", "HP:0001337"),
        ("He feels shaky and queasy.", "queasy", "HP:0002018"),
        ("She is frail and cachectic.", "cachectic", "HP:0004326"),
        ("He passed out at work.", "passed out", "HP:0001279"),
        ("Pins and needles in both feet.", "Pins and needles", "SCTID:91019004"),
        ("He spiked a temperature overnight.", "temperature", "HP:0001945"),
        ("An old cicatrix was excised.", "cicatrix", "TP:scar"),
        ("He is exhausted all the time.", "exhausted", "SYMP:0000186"),
    ],
)
def test_it_reads_lay_words_for_findings(text: str, found: str, concept_id: str) -> None:
    entity = next(e for e in _findings(text) if e.text == found)
    assert entity.concept_id == concept_id


@pytest.mark.parametrize(
    "text",
    [
        "He exhausted his supply of oxycodone.",
        "She passed out of the room.",
        "Temperature was 37.1.",
        "PDA ligation was performed in infancy.",
    ],
)
def test_lay_words_and_findings_are_not_taken_in_their_other_uses(text: str) -> None:
    assert _findings(text) == []
