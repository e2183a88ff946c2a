"""The records every twin is fitted to.

Every clinical row carries a ``fhir_id`` (kept from the source bundle, or minted here) so that imports
are idempotent and exports round-trip. Values are stored in one canonical unit per code
(``patients.coding``); the value and unit as received are kept beside them.
"""

from __future__ import annotations

import functools
import operator
import uuid

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q


def new_fhir_id() -> str:
    return str(uuid.uuid4())


# Property 11: every insert, update and delete of a clinical row is copied by a PostgreSQL trigger
# into the model's event table (``<Model>Event``): the row after an insert, the row before and
# after an update (same context), the row before a delete, with the context the change was
# made in (the import batch and who imported it). The event tables are append-only.
def clinical_history() -> tuple[pghistory.Tracker, ...]:
    # fresh trackers per model: a tracker keeps the fields of the model it was bound to
    return (
        pghistory.InsertEvent(),
        pghistory.UpdateEvent("before_update", row=pghistory.Old),
        pghistory.UpdateEvent("update"),
        pghistory.DeleteEvent(),
    )


def observation_history() -> tuple[pghistory.Tracker, ...]:
    # An observation never changes once written (below), so its insert is not copied: the row
    # itself is that record; an update (the is_current flag, a review flag) or a delete is copied.
    return clinical_history()[1:]


def _any_changed(fields: tuple[str, ...]) -> pgtrigger.Q:
    return functools.reduce(
        operator.or_,
        (pgtrigger.Q(**{f"old__{f}__df": pgtrigger.F(f"new__{f}")}) for f in fields),
    )


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class ImportBatch(models.Model):
    """One attempt to import one FHIR bundle: what came in, what it changed, or why it failed."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        UNCHANGED = "unchanged", "Unchanged (already imported)"
        FAILED = "failed", "Failed"

    class Channel(models.TextChoices):
        COMMAND = "command", "Command line"
        ADMIN = "admin", "Admin upload"
        API = "api", "API"
        SEED = "seed", "Demo seed"

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    channel = models.CharField(max_length=12, choices=Channel.choices)
    filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    patient = models.ForeignKey(
        "Patient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    counts = models.JSONField(
        default=dict, blank=True, help_text="Per resource type: created, updated, unchanged."
    )
    errors = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name_plural = "import batches"
        # the provenance of every imported row and of every version it replaced
        triggers = [pgtrigger.Protect(name="import_batch_kept", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.filename or self.sha256[:12]} ({self.status})"


@pghistory.track(*clinical_history(), append_only=True)
class Patient(models.Model):
    fhir_id = models.CharField(max_length=64, unique=True, default=new_fhir_id)
    mrn = models.CharField("MRN", max_length=64, unique=True)
    mrn_system = models.CharField(max_length=255, blank=True)
    given_name = models.CharField(max_length=120)
    family_name = models.CharField(max_length=120, db_index=True)
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    birth_date = models.DateField()
    deceased_at = models.DateTimeField(null=True, blank=True)
    race = models.CharField(max_length=80, blank=True)
    ethnicity = models.CharField(max_length=80, blank=True)
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["family_name", "given_name"]
        indexes = [models.Index(fields=["family_name", "given_name"], name="patient_name_idx")]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.mrn})"

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class CareTeam(models.Model):
    """Which clinicians look after which patients. All patient access is scoped through these."""

    name = models.CharField(max_length=120, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="care_teams", blank=True
    )
    patients = models.ManyToManyField(Patient, related_name="care_teams", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


@pghistory.track(*clinical_history(), append_only=True)
class Encounter(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="encounters")
    fhir_id = models.CharField(max_length=64, unique=True, default=new_fhir_id)
    status = models.CharField(max_length=20, default="finished")
    class_code = models.CharField(max_length=20, blank=True)
    type_code = models.CharField(max_length=40, blank=True)
    type_display = models.TextField(blank=True)
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True)
    practitioner = models.CharField(
        max_length=255, blank=True, help_text="Practitioner reference or name."
    )
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-start"]
        indexes = [models.Index(fields=["patient", "start"], name="encounter_patient_start_idx")]

    def __str__(self) -> str:
        return f"{self.type_display or self.class_code} on {self.start:%Y-%m-%d}"


#: what was measured, when and for whom: never changed in place
OBSERVATION_IMMUTABLE_FIELDS: tuple[str, ...] = (
    "patient_id",
    "fhir_id",
    "parent_id",
    "component_index",
    "code",
    "display",
    "category",
    "status",
    "value",
    "unit",
    "original_value",
    "original_unit",
    "value_code",
    "value_code_system",
    "value_display",
    "value_string",
    "effective_at",
    "issued_at",
    "source",
    "created_at",
    "version",
    "previous_version_id",
)


class CurrentObservationManager(models.Manager["Observation"]):
    """Current versions only: what every page, export and twin reads."""

    def get_queryset(self) -> models.QuerySet[Observation]:
        return super().get_queryset().filter(is_current=True)


@pghistory.track(*observation_history(), append_only=True)
class Observation(models.Model):
    """One measurement. A blood-pressure panel is a parent row; its systolic and diastolic components
    are child rows with their own LOINC codes, so "all systolic readings" is one indexed query.

    Immutable (property 15): a PostgreSQL trigger refuses any change to what was measured. A
    re-imported bundle that changes a reading writes a new version with the same ``fhir_id`` and
    its own import batch, and marks the old one not current; ``Observation.objects`` reads current
    versions only, ``Observation.versions`` every version.
    """

    class Source(models.TextChoices):
        CLINIC = "clinic", "Clinic"
        HOME_DEVICE = "home_device", "Home device"
        IMPORT = "import", "Import"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="observations")
    # a component row's id is its panel's FHIR id (up to 64 characters) plus "#<index>"; unique
    # among current versions (constraint below)
    fhir_id = models.CharField(max_length=72, db_index=True, default=new_fhir_id)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="components"
    )
    component_index = models.PositiveSmallIntegerField(null=True, blank=True)
    code = models.CharField("LOINC code", max_length=20)
    display = models.TextField(blank=True)
    category = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=20, default="final")
    value = models.FloatField(null=True, blank=True, help_text="In the canonical unit of the code.")
    unit = models.CharField("UCUM unit", max_length=40, blank=True)
    original_value = models.FloatField(null=True, blank=True)
    original_unit = models.CharField(max_length=40, blank=True)
    value_code = models.CharField(max_length=40, blank=True)
    value_code_system = models.CharField(max_length=255, blank=True)
    value_display = models.TextField(blank=True)
    value_string = models.TextField(blank=True)
    effective_at = models.DateTimeField()
    issued_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.CLINIC)
    implausible = models.BooleanField(
        default=False,
        help_text="Possible but outside the plausible range: kept, flagged for review.",
    )
    # db_default: rows inserted by raw SQL (benchmarks) that name no flag get the same defaults
    implausible_reason = models.TextField(
        blank=True,
        default="",
        db_default="",
        help_text="Why the value is implausible, from patients/data/plausible_ranges.csv.",
    )
    unit_assumed = models.BooleanField(
        default=False,
        db_default=False,
        help_text="The value came without a unit and was read in its code's only unit "
        "(docs/import-policy.md).",
    )
    encounter = models.ForeignKey(
        Encounter, null=True, blank=True, on_delete=models.SET_NULL, related_name="observations"
    )
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # db_default: rows inserted by raw SQL (benchmarks) are first and current versions
    is_current = models.BooleanField(
        default=True, db_default=True, help_text="False once a later version replaces it."
    )
    version = models.PositiveIntegerField(default=1, db_default=1)
    previous_version = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = CurrentObservationManager()
    versions = models.Manager["Observation"]()

    class Meta:
        ordering = ["patient", "code", "effective_at"]
        base_manager_name = "versions"
        indexes = [
            models.Index(
                fields=["patient", "code", "effective_at"], name="obs_patient_code_time_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["fhir_id"], condition=Q(is_current=True), name="obs_current_fhir_id_uniq"
            )
        ]
        triggers = [
            pgtrigger.Protect(
                name="observation_immutable",
                operation=pgtrigger.Update,
                condition=_any_changed(OBSERVATION_IMMUTABLE_FIELDS),
            )
        ]

    def __str__(self) -> str:
        value = self.value if self.value is not None else (self.value_display or self.value_string)
        return f"{self.display or self.code} = {value} {self.unit} at {self.effective_at:%Y-%m-%d}"


@pghistory.track(*clinical_history(), append_only=True)
class Condition(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="conditions")
    fhir_id = models.CharField(max_length=64, unique=True, default=new_fhir_id)
    code = models.CharField("SNOMED CT code", max_length=40)
    display = models.TextField(blank=True)
    clinical_status = models.CharField(max_length=20, default="active")
    verification_status = models.CharField(max_length=20, blank=True)
    onset_at = models.DateTimeField(null=True, blank=True)
    abatement_at = models.DateTimeField(null=True, blank=True)
    recorded_at = models.DateTimeField(null=True, blank=True)
    encounter = models.ForeignKey(
        Encounter, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["patient", "onset_at"]
        indexes = [models.Index(fields=["patient", "code"], name="condition_patient_code_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(abatement_at__isnull=True)
                | Q(onset_at__isnull=True)
                | Q(abatement_at__gte=models.F("onset_at")),
                name="condition_abatement_after_onset",
            )
        ]

    def __str__(self) -> str:
        return self.display or self.code

    @property
    def label(self) -> str:
        """The display without SNOMED's semantic tag ("Essential hypertension (disorder)" → "Essential hypertension")."""
        text = self.display or self.code
        return text.rsplit(" (", 1)[0] if text.endswith(")") and " (" in text else text


class TreatmentClass(models.TextChoices):
    """The classes the twin understands (keys shared with ``models_engine.history.TREATMENT_CLASSES``)."""

    THIAZIDE = "thiazide", "Thiazide diuretic"
    ACE_INHIBITOR = "ace_inhibitor", "ACE inhibitor"
    ARB = "arb", "Angiotensin receptor blocker"
    CCB = "ccb", "Calcium-channel blocker"
    BETA_BLOCKER = "beta_blocker", "Beta blocker"
    LOOP_DIURETIC = "loop_diuretic", "Loop diuretic"
    STATIN = "statin", "Statin"
    EZETIMIBE = "ezetimibe", "Ezetimibe"
    METFORMIN = "metformin", "Metformin"
    SGLT2_INHIBITOR = "sglt2_inhibitor", "SGLT2 inhibitor"
    GLP1_RA = "glp1_ra", "GLP-1 receptor agonist"
    SULFONYLUREA = "sulfonylurea", "Sulfonylurea"
    DPP4_INHIBITOR = "dpp4_inhibitor", "DPP-4 inhibitor"
    PIOGLITAZONE = "pioglitazone", "Pioglitazone"
    INSULIN = "insulin", "Insulin"


@pghistory.track(*clinical_history(), append_only=True)
class Medication(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ON_HOLD = "on-hold", "On hold"
        STOPPED = "stopped", "Stopped"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        ENTERED_IN_ERROR = "entered-in-error", "Entered in error"
        DRAFT = "draft", "Draft"
        UNKNOWN = "unknown", "Unknown"

    class StatinIntensity(models.TextChoices):
        NONE = "", "—"
        LOW = "low", "Low"
        MODERATE = "moderate", "Moderate"
        HIGH = "high", "High"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="medications")
    fhir_id = models.CharField(max_length=64, unique=True, default=new_fhir_id)
    rxnorm_code = models.CharField("RxNorm code", max_length=20, blank=True)
    name = models.CharField(max_length=255)
    dose_value = models.FloatField(null=True, blank=True)
    dose_unit = models.CharField(max_length=40, blank=True)
    frequency = models.CharField(
        max_length=80, blank=True, help_text="E.g. 'once daily', '2 per 1 d'."
    )
    dosage_text = models.TextField(blank=True)
    start = models.DateTimeField(null=True, blank=True)
    stop = models.DateTimeField(null=True, blank=True)
    authored_on = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    treatment_class = models.CharField(max_length=20, choices=TreatmentClass.choices, blank=True)
    statin_intensity = models.CharField(max_length=10, choices=StatinIntensity.choices, blank=True)
    dose_multiple = models.FloatField(
        null=True,
        blank=True,
        help_text="Strength relative to the class's standard dose (Law 2003 definition).",
    )
    requester = models.CharField(max_length=255, blank=True)
    encounter = models.ForeignKey(
        Encounter, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["patient", "start"]
        indexes = [
            models.Index(fields=["patient", "treatment_class"], name="med_patient_class_idx")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(stop__isnull=True)
                | Q(start__isnull=True)
                | Q(stop__gte=models.F("start")),
                name="medication_stop_after_start",
            )
        ]

    def __str__(self) -> str:
        return self.name


@pghistory.track(*clinical_history(), append_only=True)
class ClinicalNote(models.Model):
    """A note one clinician writes to others. A signed note never changes: an amendment is a new
    version that points back to the one it replaces."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SIGNED = "signed", "Signed"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="notes")
    fhir_id = models.CharField(max_length=64, unique=True, default=new_fhir_id)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="notes",
    )
    author_name = models.CharField(max_length=200)
    author_role = models.CharField(max_length=120, blank=True)
    author_reference = models.CharField(
        max_length=120, blank=True, help_text="FHIR Practitioner id of the author."
    )
    written_at = models.DateTimeField()
    note_type_code = models.CharField(max_length=20, blank=True, help_text="LOINC document type.")
    note_type = models.CharField(max_length=120, blank=True)
    title = models.CharField(max_length=255, blank=True)
    text = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    signed_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    previous_version = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="next_version"
    )
    encounter = models.ForeignKey(
        Encounter, null=True, blank=True, on_delete=models.SET_NULL, related_name="notes"
    )
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient", "-written_at"]
        indexes = [models.Index(fields=["patient", "written_at"], name="note_patient_time_idx")]
        # save() below says why in Python; this holds for every other writer (update(), SQL)
        triggers = [
            pgtrigger.Protect(
                name="signed_note_immutable",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__status="signed")
                & _any_changed(
                    (
                        "text",
                        "author_id",
                        "author_name",
                        "written_at",
                        "patient_id",
                        "title",
                        "status",
                    )
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title or self.note_type or 'Note'} by {self.author_name} ({self.written_at:%Y-%m-%d})"

    _IMMUTABLE_WHEN_SIGNED = (
        "text",
        "author_id",
        "author_name",
        "written_at",
        "patient_id",
        "title",
    )

    def save(self, *args: object, **kwargs: object) -> None:
        # A signed note is part of the legal record: refuse any change to it, whoever calls save().
        if self.pk is not None:
            stored = (
                ClinicalNote.objects.filter(pk=self.pk)
                .values(*self._IMMUTABLE_WHEN_SIGNED, "status")
                .first()
            )
            if stored and stored["status"] == self.Status.SIGNED:
                changed = [f for f in self._IMMUTABLE_WHEN_SIGNED if stored[f] != getattr(self, f)]
                if changed or self.status != self.Status.SIGNED:
                    raise SignedNoteError(
                        f"note {self.fhir_id} is signed and cannot be changed ({', '.join(changed) or 'status'}); "
                        "write an amendment instead"
                    )
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def is_signed(self) -> bool:
        return self.status == self.Status.SIGNED


class SignedNoteError(Exception):
    """An attempt to change a signed note in place."""


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class NoteAnalysisResult(models.Model):
    """What the note reader found in one note version (``nlp.NoteAnalysis`` as JSON)."""

    note = models.OneToOneField(ClinicalNote, on_delete=models.CASCADE, related_name="analysis")
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    pipeline_version = models.CharField(max_length=40, blank=True)
    text_sha256 = models.CharField(max_length=64, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Analysis of note {self.note_id} ({self.status})"


class NoteSummary(models.Model):
    """The cross-note summary of one patient (``nlp.PatientSummary`` as JSON), every item linked to
    its source note and character span."""

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="note_summary")
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    pipeline_version = models.CharField(max_length=40, blank=True)
    inputs_sha256 = models.CharField(
        max_length=64, blank=True, help_text="Hash of the notes and record it was built from."
    )
    summary = models.JSONField(null=True, blank=True)
    note_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    triggered_by = models.CharField(
        max_length=150, blank=True, help_text="User or named system actor."
    )
    computed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "note summaries"

    def __str__(self) -> str:
        return f"Note summary of patient {self.patient_id} ({self.status})"


class NoteSummaryView(models.Model):
    """When a clinician last opened a patient's notes: which summary (by its ``computed_at``) they
    saw, so My patients can mark a summary that changed since."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    seen_computed_at = models.DateTimeField(
        help_text="computed_at of the notes summary shown when the clinician last opened the notes."
    )
    viewed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "patient"], name="note_summary_view_once")
        ]

    def __str__(self) -> str:
        return f"Notes summary of patient {self.patient_id} seen by user {self.user_id}"
