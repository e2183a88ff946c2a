"""The demo cohort: synthetic patients from the project's own generator, the clinicians who wrote
their notes as user accounts, care teams, and a data manager. Idempotent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from accounts.models import Role, User
from accounts.services import user_create
from patients.cohort.generator import PRACTITIONERS, generate_cohort
from patients.fhir.bulk import cohort_bulk_load
from patients.models import CareTeam, ClinicalNote, ImportBatch, Patient
from patients.services import note_summary_refresh, stale_summary_patient_ids
from signin.services import totp_device_set, totp_key_base32

DEMO_PASSWORD = "twinportal-demo"
DATA_MANAGERS_GROUP = "Data managers"
#: The demo data manager's authenticator key (hex), published like the demo password: the demo's
#: admin site asks for a code, and whoever runs the demo adds this key to an authenticator app.
DEMO_TOTP_KEY = b"twinportal-demo-totp".hex()

#: The care team each professional role belongs to.
TEAM_FOR_ROLE = {
    "general practitioner": "General practice",
    "practice nurse": "General practice",
    "cardiologist": "Cardiology",
    "diabetes specialist nurse": "Diabetes service",
    "endocrinologist": "Diabetes service",
}


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    description: str
    #: the authenticator app's key, for an account with a second factor
    totp_key: str = ""
    totp_uri: str = ""


def _team_name(role: str) -> str:
    return TEAM_FOR_ROLE.get(role.lower(), role.title())


def data_managers_group() -> Group:
    group, _ = Group.objects.get_or_create(name=DATA_MANAGERS_GROUP)
    perms = Permission.objects.filter(
        content_type__app_label__in=["patients", "twins", "devices", "research"]
    )
    perms = perms | Permission.objects.filter(
        content_type__app_label="accounts",
        codename__in=["view_user", "add_apitoken", "change_apitoken", "view_apitoken"],
    )
    group.permissions.set(perms)
    return group


def demo_seed(
    *,
    patients: int,
    seed: int = 7,
    today: dt.date | None = None,
    progress: Callable[[str], None] = print,
) -> list[DemoLogin]:
    """Create (or top up) the demo cohort; returns the logins to print."""
    today = today or dt.datetime.now(dt.UTC).date()
    logins: list[DemoLogin] = []
    with transaction.atomic():
        clinicians: dict[str, User] = {}
        for p in PRACTITIONERS:
            pid, role = p.id, p.role
            user = User.objects.filter(practitioner_id=pid).first()
            if user is None:
                given, family = p.given, p.family
                user = user_create(
                    username=f"{given}.{family}".lower(),
                    password=DEMO_PASSWORD,
                    role=Role.CLINICIAN,
                    first_name=given,
                    last_name=family,
                    professional_role=role,
                )
                user.practitioner_id = pid
                user.save(update_fields=["practitioner_id"])
            clinicians[pid] = user
            team, _ = CareTeam.objects.get_or_create(name=_team_name(role))
            team.members.add(user)
        manager = User.objects.filter(username="datamanager").first()
        if manager is None:
            manager = user_create(
                username="datamanager",
                password=DEMO_PASSWORD,
                role=Role.DATA_MANAGER,
                first_name="Dana",
                last_name="Reyes",
            )
        manager.groups.add(data_managers_group())
        device = totp_device_set(user=manager, key_hex=DEMO_TOTP_KEY)

    existing = Patient.objects.count()
    if existing < patients:
        progress(f"Generating {patients - existing} synthetic patients…")
        batch = ImportBatch.objects.create(
            channel=ImportBatch.Channel.SEED, filename="demo cohort", sha256="-"
        )
        counts = cohort_bulk_load(
            bundles=generate_cohort(patients, seed=seed, today=today), validate=False, batch=batch
        )
        batch.status = ImportBatch.Status.SUCCEEDED
        batch.counts = {k: {"created": v} for k, v in counts.items() if k != "skipped"}
        batch.save()
        progress(
            f"Loaded {counts['Patient']} patients, {counts['Observation']} observations, {counts['DocumentReference']} notes."
        )

    _assign_care_teams()
    stale = stale_summary_patient_ids()
    if stale:
        progress(f"Reading the notes of {len(stale)} patients…")
        for patient_id in stale:
            note_summary_refresh(patient_id=patient_id, triggered_by="system:demo-seed")
    gp = next(
        (u for u in clinicians.values() if u.professional_role.lower() == "general practitioner"),
        None,
    )
    if gp is not None:
        logins.append(
            DemoLogin(
                gp.username,
                DEMO_PASSWORD,
                f"clinician ({gp.professional_role}, General practice team)",
            )
        )
    shown_roles = {"general practitioner"}
    for u in clinicians.values():
        role = u.professional_role.lower()
        if role in ("cardiologist", "diabetes specialist nurse") and role not in shown_roles:
            shown_roles.add(role)
            logins.append(
                DemoLogin(
                    u.username,
                    DEMO_PASSWORD,
                    f"clinician ({u.professional_role}, {_team_name(role)} team)",
                )
            )
    logins.append(
        DemoLogin(
            manager.username,
            DEMO_PASSWORD,
            "data manager (admin site, with an authenticator code)",
            totp_key=totp_key_base32(device),
            totp_uri=device.config_url,
        )
    )
    return logins


def _assign_care_teams() -> None:
    """General practice looks after everyone; specialist teams after the patients they wrote notes for."""
    teams = {t.name: t for t in CareTeam.objects.all()}
    general = teams.get("General practice") or CareTeam.objects.create(name="General practice")
    general.patients.add(*Patient.objects.values_list("pk", flat=True))
    roles = ClinicalNote.objects.values_list("patient_id", "author_role").distinct()
    by_team: dict[str, set[int]] = {}
    for patient_id, role in roles:
        by_team.setdefault(_team_name(role or ""), set()).add(patient_id)
    for name, ids in by_team.items():
        if name in teams and name != "General practice":
            teams[name].patients.add(*ids)
