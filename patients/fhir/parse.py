"""Validate a FHIR R4 bundle and turn it into plain records, or say exactly what is wrong.

Pure Python (no Django): the importer writes what this returns; the backtest and the twin read it
directly. Every problem names the entry index, the resource type and the field. Nothing here
writes anything, so a bundle with any problem can be refused as a whole.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from patients import coding
from patients.fhir.dates import parse_fhir_datetime

#: Resource types TwinPortal stores; everything else in a bundle is validated, counted and skipped.
IMPORTED_TYPES = (
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "MedicationRequest",
    "DocumentReference",
)

SOURCE_TAG_SYSTEM = "https://twinportal.example.org/fhir/observation-source"
_SOURCE_FROM_TAG = {"home-device": "home_device", "clinic": "clinic", "import": "import"}
MAX_PROBLEMS = 50
#: Codes of the FHIR R4 elements with a *required* binding that TwinPortal reads
#: (hl7.org/fhir/R4: ObservationStatus, EncounterStatus, condition-clinical, condition-ver-status,
#: medicationrequest-status); any other code is a schema violation of the bundle.
REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("Observation", "status"): frozenset(
        {"registered", "preliminary", "final", "amended", "corrected", "cancelled"}
        | {"entered-in-error", "unknown"}
    ),
    ("Encounter", "status"): frozenset(
        {"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled"}
        | {"entered-in-error", "unknown"}
    ),
    ("Condition", "clinicalStatus"): frozenset(
        {"active", "recurrence", "relapse", "inactive", "remission", "resolved"}
    ),
    ("Condition", "verificationStatus"): frozenset(
        {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"}
    ),
    ("MedicationRequest", "status"): frozenset(
        {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft"}
        | {"unknown"}
    ),
}
#: Longest value each stored code or name may have, with the FHIR path a problem names. They are
#: the column widths of ``patients.models`` (a test keeps the two equal); free text (displays,
#: dosage text, note text) has no limit.
FIELD_LIMITS: dict[str, dict[str, tuple[int, str]]] = {
    "Patient": {
        "fhir_id": (64, "id"),
        "mrn": (64, "identifier.value"),
        "mrn_system": (255, "identifier.system"),
        "given_name": (120, "name.given"),
        "family_name": (120, "name.family"),
        "race": (80, "extension(us-core-race)"),
        "ethnicity": (80, "extension(us-core-ethnicity)"),
    },
    "Encounter": {
        "fhir_id": (64, "id"),
        "status": (20, "status"),
        "class_code": (20, "class.code"),
        "type_code": (40, "type[0].coding[0].code"),
        "practitioner": (255, "participant[0].individual"),
    },
    "Observation": {
        "fhir_id": (72, "id"),
        "code": (20, "code.coding[0].code"),
        "category": (40, "category[0].coding[0].code"),
        "status": (20, "status"),
        "unit": (40, "valueQuantity.code"),
        "original_unit": (40, "valueQuantity.code"),
        "value_code": (40, "valueCodeableConcept.coding[0].code"),
        "value_code_system": (255, "valueCodeableConcept.coding[0].system"),
    },
    "Condition": {
        "fhir_id": (64, "id"),
        "code": (40, "code.coding[0].code"),
        "clinical_status": (20, "clinicalStatus"),
        "verification_status": (20, "verificationStatus"),
    },
    "MedicationRequest": {
        "fhir_id": (64, "id"),
        "rxnorm_code": (20, "medicationCodeableConcept.coding[0].code"),
        "name": (255, "medicationCodeableConcept.text"),
        "dose_unit": (40, "dosageInstruction[0].doseAndRate[0].doseQuantity.unit"),
        "frequency": (80, "dosageInstruction[0].timing.repeat"),
        "status": (20, "status"),
        "requester": (255, "requester"),
    },
    "DocumentReference": {
        "fhir_id": (64, "id"),
        "author_name": (200, "author"),
        "author_role": (120, "author(PractitionerRole).code"),
        "author_reference": (120, "author.reference"),
        "note_type_code": (20, "type.coding[0].code"),
        "note_type": (120, "type.coding[0].display"),
        "title": (255, "description"),
    },
}
#: Clock skew tolerated before a time counts as "in the future".
FUTURE_TOLERANCE = dt.timedelta(days=1)


@dataclass(frozen=True)
class Problem:
    entry: int | None
    resource_type: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"entry {self.entry}" if self.entry is not None else "bundle"
        rtype = f" ({self.resource_type})" if self.resource_type else ""
        return f"{where}{rtype}, field {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry": self.entry,
            "resource_type": self.resource_type,
            "field": self.field,
            "message": self.message,
        }


class BundleError(ValueError):
    """The bundle cannot be imported; ``problems`` lists every reason found (up to MAX_PROBLEMS)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(str(p) for p in problems[:5]) + (" …" if len(problems) > 5 else "")
        )


@dataclass
class PatientRec:
    fhir_id: str
    mrn: str
    mrn_system: str
    given_name: str
    family_name: str
    sex: str
    birth_date: dt.date
    deceased_at: dt.datetime | None
    race: str
    ethnicity: str


@dataclass
class EncounterRec:
    fhir_id: str
    status: str
    class_code: str
    type_code: str
    type_display: str
    start: dt.datetime
    end: dt.datetime | None
    practitioner: str


@dataclass
class ObservationRec:
    fhir_id: str
    code: str
    display: str
    category: str
    status: str
    effective_at: dt.datetime
    issued_at: dt.datetime | None
    source: str
    encounter_id: str | None
    value: float | None = None
    unit: str = ""
    original_value: float | None = None
    original_unit: str = ""
    value_code: str = ""
    value_code_system: str = ""
    value_display: str = ""
    value_string: str = ""
    implausible: bool = False
    #: why the value is implausible (``patients/data/plausible_ranges.csv``), "" when it is not
    implausible_reason: str = ""
    #: the quantity came without a unit and was read in its code's only unit
    unit_assumed: bool = False
    components: list[ObservationRec] = field(default_factory=list)


@dataclass
class ConditionRec:
    fhir_id: str
    code: str
    display: str
    clinical_status: str
    verification_status: str
    onset_at: dt.datetime | None
    abatement_at: dt.datetime | None
    recorded_at: dt.datetime | None
    encounter_id: str | None


@dataclass
class MedicationRec:
    fhir_id: str
    rxnorm_code: str
    name: str
    dose_value: float | None
    dose_unit: str
    frequency: str
    dosage_text: str
    start: dt.datetime | None
    stop: dt.datetime | None
    authored_on: dt.datetime | None
    status: str
    treatment_class: str
    statin_intensity: str
    dose_multiple: float | None
    requester: str
    encounter_id: str | None


@dataclass
class NoteRec:
    fhir_id: str
    author_name: str
    author_role: str
    author_reference: str
    written_at: dt.datetime
    note_type_code: str
    note_type: str
    title: str
    text: str
    status: str
    encounter_id: str | None
    replaces_id: str | None = None


@dataclass
class ParsedBundle:
    sha256: str
    patient: PatientRec
    encounters: list[EncounterRec]
    observations: list[ObservationRec]
    conditions: list[ConditionRec]
    medications: list[MedicationRec]
    notes: list[NoteRec]
    #: number of resources of each type in the bundle (imported and skipped alike)
    resource_counts: dict[str, int]

    @property
    def imported_counts(self) -> dict[str, int]:
        return {t: self.resource_counts.get(t, 0) for t in IMPORTED_TYPES}

    @property
    def flag_counts(self) -> dict[str, int]:
        """Values kept with a flag (components included): units assumed, implausible values."""
        values = [c for o in self.observations for c in (o, *o.components)]
        return {
            "unit_assumed": sum(v.unit_assumed for v in values),
            "implausible": sum(v.implausible for v in values),
        }


def record_values(record: Any, *drop: str) -> dict[str, Any]:
    """A record's fields as model keyword arguments, leaving out ``drop``.

    Shallow, unlike ``dataclasses.asdict``, which would deep-copy nested components only for the
    caller to drop them.
    """
    return {f.name: getattr(record, f.name) for f in fields(record) if f.name not in drop}


def bundle_sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def load_bundle_json(raw: bytes) -> dict[str, Any]:
    """Decode and parse the bytes of a bundle, with the line and column of a JSON error."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BundleError(
            [Problem(None, "", "(file)", f"not UTF-8 text (byte {exc.start}): {exc.reason}")]
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(
            [
                Problem(
                    None,
                    "",
                    "(file)",
                    f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                )
            ]
        ) from exc
    if not isinstance(data, dict):
        raise BundleError(
            [Problem(None, "", "(file)", "the top level must be a JSON object (a FHIR Bundle)")]
        )
    return data


def parse_bundle(
    data: dict[str, Any] | bytes,
    *,
    now: dt.datetime | None = None,
    sha256: str | None = None,
    validate: bool = True,
) -> ParsedBundle:
    """Validate ``data`` against FHIR R4 (R4B models) and map it to records.

    ``sha256`` is the hash of the bytes the bundle arrived as (computed here when ``data`` is bytes,
    or from a canonical JSON dump when only the parsed object is given).
    ``validate=False`` skips the R4B schema models (the mapping checks still run); it is only for
    bundles this project generated itself and tests as valid (the bulk cohort loader).
    Raises :class:`BundleError` listing every problem found; returns nothing partial.
    """
    if isinstance(data, bytes):
        sha256 = sha256 or bundle_sha256(data)
        bundle = load_bundle_json(data)
    else:
        bundle = data
        sha256 = sha256 or bundle_sha256(json.dumps(data, sort_keys=True).encode("utf-8"))
    return _Parser(bundle, sha256, now or dt.datetime.now(dt.UTC), validate=validate).parse()


def _first(items: Any) -> Any:
    return items[0] if isinstance(items, list) and items else None


def _text(holder: Any, key: str) -> str:
    """``holder[key]`` as text; "" when the element is absent or null."""
    value = holder.get(key) if isinstance(holder, dict) else None
    return "" if value is None else str(value)


def _coding(concept: Any, system: str | None = None) -> dict[str, Any]:
    """The first coding of a CodeableConcept, preferring ``system``."""
    raw = concept.get("coding") if isinstance(concept, dict) else None
    codings = [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
    if system:
        for c in codings:
            if c.get("system") == system:
                return dict(c)
    return dict(codings[0]) if codings else {}


class _Parser:
    def __init__(
        self, bundle: dict[str, Any], sha256: str, now: dt.datetime, *, validate: bool = True
    ) -> None:
        self.validate = validate
        self.bundle = bundle
        self.sha256 = sha256
        self.now = now
        self.problems: list[Problem] = []
        self.by_ref: dict[str, tuple[int, dict[str, Any]]] = {}

    # -- problems ---------------------------------------------------------------------------------
    def problem(self, entry: int | None, rtype: str, fld: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(entry, rtype, fld, message))

    def bound_code(self, entry: int, rtype: str, fld: str, value: str) -> str:
        """``value`` if it is in the required value set of ``rtype.fld`` (or empty), else a problem."""
        allowed = REQUIRED_CODES[(rtype, fld)]
        if value and value not in allowed:
            self.problem(entry, rtype, fld, f"{value!r} is not one of {', '.join(sorted(allowed))}")
        return value

    def date(
        self, entry: int, rtype: str, fld: str, value: Any, *, future_ok: bool = False
    ) -> dt.datetime | None:
        if not value:
            return None
        try:
            parsed = parse_fhir_datetime(str(value))
        except ValueError as exc:
            self.problem(entry, rtype, fld, str(exc))
            return None
        if not future_ok and parsed > self.now + FUTURE_TOLERANCE:
            self.problem(entry, rtype, fld, f"{value} is in the future")
        return parsed

    # -- top level ----------------------------------------------------------------------------------
    def parse(self) -> ParsedBundle:
        b = self.bundle
        if b.get("resourceType") != "Bundle":
            raise BundleError(
                [Problem(None, _text(b, "resourceType"), "resourceType", "must be 'Bundle'")]
            )
        entries = b.get("entry")
        if not isinstance(entries, list) or not entries:
            raise BundleError([Problem(None, "Bundle", "entry", "the bundle has no entries")])

        counts: Counter[str] = Counter()
        resources: list[tuple[int, dict[str, Any]]] = []
        for index, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                self.problem(index, "", "resource", "entry has no resource")
                continue
            rtype = _text(resource, "resourceType")
            try:
                model = get_fhir_model_class(rtype)
            except (KeyError, ValueError):
                self.problem(
                    index, rtype, "resourceType", f"unknown FHIR R4 resource type {rtype!r}"
                )
                continue
            if self.validate:
                try:
                    model.model_validate(resource)
                except ValidationError as exc:
                    for err in exc.errors()[:5]:
                        loc = ".".join(str(p) for p in err["loc"]) or "(resource)"
                        self.problem(index, rtype, loc, err["msg"])
                    continue
                except (KeyError, TypeError, ValueError) as exc:
                    # the R4B models raise these (not ValidationError) for a contained resource
                    # whose resourceType is not a FHIR type
                    self.problem(
                        index,
                        rtype,
                        "contained",
                        f"not a valid {rtype}: {exc.__class__.__name__} {exc}",
                    )
                    continue
            if rtype in IMPORTED_TYPES and not resource.get("id"):
                self.problem(
                    index,
                    rtype,
                    "id",
                    "every imported resource needs an id (records are keyed on it)",
                )
                continue
            counts[rtype] += 1
            resources.append((index, resource))
            full_url = entry.get("fullUrl")
            if full_url:
                self.by_ref[str(full_url)] = (index, resource)
            if resource.get("id"):
                self.by_ref[f"{rtype}/{resource['id']}"] = (index, resource)
        if self.problems:
            raise BundleError(self.problems)

        patients = [(i, r) for i, r in resources if r["resourceType"] == "Patient"]
        if not patients:
            raise BundleError(
                [Problem(None, "Bundle", "entry", "the bundle has no Patient resource")]
            )
        if len(patients) > 1:
            raise BundleError(
                [
                    Problem(
                        patients[1][0],
                        "Patient",
                        "(resource)",
                        "a bundle must hold exactly one patient",
                    )
                ]
            )
        p_index, p_res = patients[0]
        patient = self.patient(p_index, p_res)
        self.check_lengths(p_index, "Patient", patient)
        patient_refs = {ref for ref, (_i, r) in self.by_ref.items() if r is p_res}

        parsed = ParsedBundle(self.sha256, patient, [], [], [], [], [], dict(counts))
        readers: dict[str, tuple[Callable[[int, dict[str, Any]], Any], list[Any]]] = {
            "Encounter": (self.encounter, parsed.encounters),
            "Observation": (self.observation, parsed.observations),
            "Condition": (self.condition, parsed.conditions),
            "MedicationRequest": (self.medication, parsed.medications),
            "DocumentReference": (self.note, parsed.notes),
        }
        for index, res in resources:
            rtype = res["resourceType"]
            if rtype not in readers:
                continue
            subject = (res.get("subject") or {}).get("reference")
            if subject not in patient_refs:
                self.problem(
                    index,
                    rtype,
                    "subject.reference",
                    f"does not refer to the bundle's patient ({subject!r})",
                )
                continue
            read, target = readers[rtype]
            rec = read(index, res)
            if rec is not None:
                self.check_lengths(index, rtype, rec)
                target.append(rec)
        if self.problems:
            raise BundleError(self.problems)
        return parsed

    def check_lengths(self, index: int, rtype: str, rec: Any) -> None:
        """Report every code or name of ``rec`` longer than its column (``FIELD_LIMITS``)."""
        for attr, (limit, path) in FIELD_LIMITS[rtype].items():
            value = getattr(rec, attr)
            if isinstance(value, str) and len(value) > limit:
                self.problem(
                    index, rtype, path, f"{value[:40]!r}… is longer than {limit} characters"
                )
        for component in getattr(rec, "components", ()):
            self.check_lengths(index, rtype, component)

    def ref_id(self, reference: Any) -> str | None:
        """The ``id`` of the resource a reference points to, when it is in the bundle."""
        if not reference:
            return None
        found = self.by_ref.get(str(reference))
        if found:
            return str(found[1].get("id") or "") or None
        return str(reference).rsplit("/", 1)[-1].removeprefix("urn:uuid:")

    def practitioner_name(self, reference: Any) -> tuple[str, str, str]:
        """(name, role, practitioner id) for a Practitioner or PractitionerRole reference."""
        found = self.by_ref.get(str(reference)) if reference else None
        if not found:
            return ("", "", "")
        res = found[1]
        role = ""
        if res["resourceType"] == "PractitionerRole":
            concept = _first(res.get("code")) or {}
            role = concept.get("text") or _coding(concept).get("display", "")
            practitioner_ref = (res.get("practitioner") or {}).get("reference")
            found = self.by_ref.get(str(practitioner_ref)) if practitioner_ref else None
            if not found:
                return ("", role, "")
            res = found[1]
        if res["resourceType"] != "Practitioner":
            return ("", role, "")
        name = _first(res.get("name")) or {}
        text = name.get("text") or " ".join(
            [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family", "")]
        )
        return (text.strip(), role, _text(res, "id"))

    # -- resources ----------------------------------------------------------------------------------
    def patient(self, index: int, res: dict[str, Any]) -> PatientRec:
        mrn, mrn_system = "", ""
        for ident in res.get("identifier") or []:
            if _coding(ident.get("type")).get("code") == "MR":
                mrn, mrn_system = _text(ident, "value"), _text(ident, "system")
                break
        if not mrn:
            mrn = str(res.get("id") or "")
        if not mrn:
            self.problem(
                index,
                "Patient",
                "identifier",
                "no medical record number (identifier of type MR) and no id",
            )
        name = _first(res.get("name")) or {}
        birth = res.get("birthDate")
        birth_date = None
        if not birth:
            self.problem(index, "Patient", "birthDate", "is required")
        else:
            parsed = self.date(index, "Patient", "birthDate", birth)
            birth_date = parsed.date() if parsed else None
        race = ethnicity = ""
        for ext in res.get("extension") or []:
            url = _text(ext, "url")
            if url.endswith("us-core-race") or url.endswith("us-core-ethnicity"):
                text = next(
                    (
                        _text(e, "valueString")
                        for e in ext.get("extension") or []
                        if e.get("url") == "text"
                    ),
                    "",
                )
                if url.endswith("race"):
                    race = text
                else:
                    ethnicity = text
        if self.problems:
            raise BundleError(self.problems)
        assert birth_date is not None
        return PatientRec(
            fhir_id=str(res.get("id") or mrn),
            mrn=mrn,
            mrn_system=mrn_system,
            given_name=" ".join(name.get("given") or []),
            family_name=_text(name, "family"),
            sex=res.get("gender") or "unknown",
            birth_date=birth_date,
            deceased_at=self.date(
                index, "Patient", "deceasedDateTime", res.get("deceasedDateTime")
            ),
            race=race,
            ethnicity=ethnicity,
        )

    def encounter(self, index: int, res: dict[str, Any]) -> EncounterRec | None:
        period = res.get("period") or {}
        start = self.date(index, "Encounter", "period.start", period.get("start"))
        if start is None:
            self.problem(index, "Encounter", "period.start", "is required")
            return None
        type_coding = _coding(_first(res.get("type")))
        participant = _first(res.get("participant")) or {}
        name, _role, _pid = self.practitioner_name(
            (participant.get("individual") or {}).get("reference")
        )
        return EncounterRec(
            fhir_id=str(res["id"]),
            status=self.bound_code(index, "Encounter", "status", _text(res, "status")),
            class_code=_text(res.get("class"), "code"),
            type_code=_text(type_coding, "code"),
            type_display=_text(type_coding, "display"),
            start=start,
            end=self.date(index, "Encounter", "period.end", period.get("end")),
            practitioner=name,
        )

    def quantity(
        self, index: int, code: str, fld: str, quantity: dict[str, Any], rec: ObservationRec
    ) -> None:
        value = quantity.get("value")
        unit = str(quantity.get("code") or quantity.get("unit") or "")
        if value is None:
            self.problem(index, "Observation", f"{fld}.value", "is required")
            return
        value = float(value)
        variable = coding.VARIABLE_BY_CODE.get(code)
        rec.original_value, rec.original_unit = value, unit
        if variable is None:
            rec.value, rec.unit = value, unit
            return
        if not unit:
            # docs/import-policy.md: a code with one unit is read in it, marked as assumed
            assumed = coding.sole_unit(variable)
            if assumed is None:
                self.problem(
                    index,
                    "Observation",
                    f"{fld}.code",
                    f"no unit given; {variable.label} may be in "
                    f"{' or '.join(variable.conversions)}, so the value cannot be read",
                )
                return
            unit, rec.unit_assumed = assumed, True
        try:
            canonical = coding.to_canonical(variable, value, unit)
            coding.check_possible(variable, canonical)
        except coding.UnitError as exc:
            self.problem(index, "Observation", f"{fld}.code", f"unknown unit: {exc}")
            return
        except coding.RangeError as exc:
            self.problem(index, "Observation", f"{fld}.value", f"impossible value: {exc}")
            return
        rec.value, rec.unit = canonical, variable.unit
        rec.implausible_reason = coding.implausible_reason(variable, canonical)
        rec.implausible = bool(rec.implausible_reason)

    def observation(self, index: int, res: dict[str, Any]) -> ObservationRec | None:
        code_c = _coding(res.get("code"), coding.LOINC)
        code = _text(code_c, "code")
        effective = (
            res.get("effectiveDateTime")
            or (res.get("effectivePeriod") or {}).get("start")
            or res.get("effectiveInstant")
        )
        eff_field = "effectiveDateTime" if res.get("effectiveDateTime") else "effective[x]"
        effective_at = self.date(index, "Observation", eff_field, effective)
        if effective_at is None:
            self.problem(index, "Observation", "effective[x]", "an effective time is required")
            return None
        source = "import"
        for tag in (res.get("meta") or {}).get("tag") or []:
            if tag.get("system") == SOURCE_TAG_SYSTEM and tag.get("code") in _SOURCE_FROM_TAG:
                source = _SOURCE_FROM_TAG[tag["code"]]
        rec = ObservationRec(
            fhir_id=str(res["id"]),
            code=code,
            display=_text(code_c, "display") or _text(res.get("code"), "text"),
            category=_text(_coding(_first(res.get("category"))), "code"),
            status=self.bound_code(index, "Observation", "status", _text(res, "status")),
            effective_at=effective_at,
            issued_at=self.date(index, "Observation", "issued", res.get("issued"), future_ok=True),
            source=source,
            encounter_id=self.ref_id((res.get("encounter") or {}).get("reference")),
        )
        self.value(index, code, "", res, rec)
        for c_index, comp in enumerate(res.get("component") or []):
            c_code = _coding(comp.get("code"), coding.LOINC)
            child = ObservationRec(
                fhir_id=f"{rec.fhir_id}#{c_index}",
                code=_text(c_code, "code"),
                display=_text(c_code, "display"),
                category=rec.category,
                status=rec.status,
                effective_at=effective_at,
                issued_at=rec.issued_at,
                source=source,
                encounter_id=rec.encounter_id,
            )
            self.value(index, child.code, f"component[{c_index}].", comp, child)
            rec.components.append(child)
        if code in coding.BP_PANEL_CODES:
            codes = {c.code for c in rec.components}
            if not {coding.SBP_CODE, coding.DBP_CODE} <= codes:
                self.problem(
                    index,
                    "Observation",
                    "component",
                    "a blood-pressure panel needs systolic and diastolic components",
                )
        return rec

    def value(
        self, index: int, code: str, prefix: str, holder: dict[str, Any], rec: ObservationRec
    ) -> None:
        quantity, concept = holder.get("valueQuantity"), holder.get("valueCodeableConcept")
        if isinstance(quantity, dict):
            self.quantity(index, code, f"{prefix}valueQuantity", quantity, rec)
        elif isinstance(concept, dict):
            c = _coding(concept)
            rec.value_code = _text(c, "code")
            rec.value_code_system = _text(c, "system")
            rec.value_display = _text(c, "display") or _text(concept, "text")
        elif holder.get("valueString") is not None:
            rec.value_string = str(holder["valueString"])
        else:
            for key in ("valueInteger", "valueBoolean", "valueDateTime"):
                if holder.get(key) is not None:
                    rec.value_string = str(holder[key])

    def condition(self, index: int, res: dict[str, Any]) -> ConditionRec:
        c = _coding(res.get("code"), coding.SNOMED)
        onset = res.get("onsetDateTime") or (res.get("onsetPeriod") or {}).get("start")
        abatement = res.get("abatementDateTime") or (res.get("abatementPeriod") or {}).get("start")
        rec = ConditionRec(
            fhir_id=str(res["id"]),
            code=_text(c, "code"),
            display=_text(c, "display") or _text(res.get("code"), "text"),
            clinical_status=self.bound_code(
                index,
                "Condition",
                "clinicalStatus",
                _text(_coding(res.get("clinicalStatus")), "code"),
            ),
            verification_status=self.bound_code(
                index,
                "Condition",
                "verificationStatus",
                _text(_coding(res.get("verificationStatus")), "code"),
            ),
            onset_at=self.date(index, "Condition", "onsetDateTime", onset),
            abatement_at=self.date(index, "Condition", "abatementDateTime", abatement),
            recorded_at=self.date(index, "Condition", "recordedDate", res.get("recordedDate")),
            encounter_id=self.ref_id((res.get("encounter") or {}).get("reference")),
        )
        if rec.onset_at and rec.abatement_at and rec.abatement_at < rec.onset_at:
            self.problem(index, "Condition", "abatementDateTime", "is before the onset")
        return rec

    def medication(self, index: int, res: dict[str, Any]) -> MedicationRec | None:
        concept = res.get("medicationCodeableConcept")
        if concept is None:
            ref = (res.get("medicationReference") or {}).get("reference")
            found = self.by_ref.get(str(ref)) if ref else None
            if not found or found[1].get("resourceType") != "Medication":
                self.problem(
                    index,
                    "MedicationRequest",
                    "medicationReference",
                    f"{ref!r} is not a Medication in the bundle",
                )
                return None
            concept = found[1].get("code") or {}
        c = _coding(concept, coding.RXNORM)
        name = str(concept.get("text") or c.get("display") or "")
        if not name:
            self.problem(
                index,
                "MedicationRequest",
                "medicationCodeableConcept",
                "has neither text nor a coding display",
            )
            return None
        dosage = _first(res.get("dosageInstruction")) or {}
        repeat = ((dosage.get("timing") or {}).get("repeat")) or {}
        bounds = repeat.get("boundsPeriod") or {}
        dose = ((_first(dosage.get("doseAndRate")) or {}).get("doseQuantity")) or {}
        frequency = ""
        if repeat.get("frequency") is not None:
            frequency = f"{repeat['frequency']} per {repeat.get('period', 1)} {repeat.get('periodUnit', 'd')}"
        authored = self.date(index, "MedicationRequest", "authoredOn", res.get("authoredOn"))
        start = self.date(
            index,
            "MedicationRequest",
            "dosageInstruction[0].timing.repeat.boundsPeriod.start",
            bounds.get("start"),
        )
        stop = self.date(
            index,
            "MedicationRequest",
            "dosageInstruction[0].timing.repeat.boundsPeriod.end",
            bounds.get("end"),
            future_ok=True,
        )
        if start and stop and stop < start:
            self.problem(
                index,
                "MedicationRequest",
                "dosageInstruction[0].timing.repeat.boundsPeriod.end",
                "is before the start",
            )
        classes = coding.classify_medication(name)
        first = classes[0] if classes else None
        requester, _role, _pid = self.practitioner_name(
            (res.get("requester") or {}).get("reference")
        )
        return MedicationRec(
            fhir_id=str(res["id"]),
            rxnorm_code=_text(c, "code"),
            name=name,
            dose_value=float(dose["value"]) if dose.get("value") is not None else None,
            dose_unit=str(dose.get("unit") or dose.get("code") or ""),
            frequency=frequency,
            dosage_text=_text(dosage, "text"),
            start=start,
            stop=stop,
            authored_on=authored,
            status=self.bound_code(
                index, "MedicationRequest", "status", str(res.get("status", "unknown"))
            ),
            treatment_class=first.treatment_class if first else "",
            statin_intensity=first.statin_intensity if first else "",
            dose_multiple=first.dose_multiple if first else None,
            requester=requester,
            encounter_id=self.ref_id((res.get("encounter") or {}).get("reference")),
        )

    def note(self, index: int, res: dict[str, Any]) -> NoteRec | None:
        content = _first(res.get("content")) or {}
        attachment = content.get("attachment") or {}
        data = attachment.get("data")
        fld = "content[0].attachment.data"
        if not data:
            self.problem(
                index,
                "DocumentReference",
                fld,
                "only inline text attachments (base64 data) are supported",
            )
            return None
        content_type = str(attachment.get("contentType") or "text/plain")
        if not content_type.startswith("text/"):
            self.problem(
                index,
                "DocumentReference",
                "content[0].attachment.contentType",
                f"{content_type!r} is not text",
            )
            return None
        charset = "utf-8"
        if "charset=" in content_type:
            charset = content_type.split("charset=", 1)[1].split(";")[0].strip() or "utf-8"
        try:
            text = base64.b64decode(data, validate=True).decode(charset)
        except (binascii.Error, ValueError, LookupError) as exc:
            self.problem(
                index, "DocumentReference", fld, f"not valid base64 {charset} text ({exc})"
            )
            return None
        if "\x00" in text:
            self.problem(
                index, "DocumentReference", fld, "text contains NUL characters (wrong encoding?)"
            )
            return None
        written = self.date(index, "DocumentReference", "date", res.get("date"))
        if written is None:
            self.problem(index, "DocumentReference", "date", "is required")
            return None
        author_ref = (_first(res.get("author")) or {}).get("reference")
        name, role, practitioner_id = self.practitioner_name(author_ref)
        if not name:
            self.problem(
                index,
                "DocumentReference",
                "author",
                "must reference a Practitioner or PractitionerRole in the bundle",
            )
            return None
        type_c = _coding(res.get("type"), coding.LOINC)
        encounter_ref = _first((res.get("context") or {}).get("encounter")) or {}
        return NoteRec(
            fhir_id=str(res["id"]),
            author_name=name,
            author_role=role,
            author_reference=practitioner_id,
            written_at=written,
            note_type_code=_text(type_c, "code"),
            note_type=_text(type_c, "display") or _text(res.get("type"), "text"),
            title=_text(attachment, "title"),
            text=text,
            status="draft" if res.get("docStatus") == "preliminary" else "signed",
            encounter_id=self.ref_id(encounter_ref.get("reference")),
            replaces_id=next(
                (
                    self.ref_id((rel.get("target") or {}).get("reference"))
                    for rel in res.get("relatesTo") or []
                    if rel.get("code") == "replaces"
                ),
                None,
            ),
        )
