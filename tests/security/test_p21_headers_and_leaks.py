"""Property 21: responses carry HSTS (production settings), a CSP with ``frame-ancestors 'none'``,
``X-Content-Type-Options: nosniff``, a Referrer-Policy and ``Cache-Control: no-store`` on patient
pages and the patient API; no patient data (name, MRN) in URLs or query strings, in log records,
or in Celery task arguments (ids only)."""

from __future__ import annotations

import inspect
import json
import logging
import re
import subprocess
import sys
import typing
from datetime import date

import pytest
from django.test import Client
from django.urls import reverse

from tests.security.test_p20_check_deploy import ROOT, production_env

pytestmark = pytest.mark.django_db

_ADDRESS = re.compile(r"""(?:href|src|action|data-[\w-]*url)\s*=\s*["']([^"']*)["']""")

# A fresh interpreter on the production settings; an unauthenticated API call needs neither the
# database nor collected static files.
_PRODUCTION_HEADERS = """
import json, django
django.setup()
from django.test import Client
r = Client().get("/api/v1/patients/", secure=True)
print(json.dumps({"status": r.status_code, **dict(r.headers.items())}))
"""


def identifiers(patient) -> list[str]:
    return [patient.mrn, patient.family_name, patient.given_name]


@pytest.fixture
def signed_in(clinician) -> Client:
    client = Client()
    client.force_login(clinician)
    return client


def test_production_responses_carry_hsts_and_the_other_headers() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PRODUCTION_HEADERS],
        cwd=ROOT,
        env=production_env(DJANGO_ALLOWED_HOSTS="testserver"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    headers = {k.lower(): v for k, v in json.loads(result.stdout.strip().splitlines()[-1]).items()}
    assert headers["status"] == 401
    hsts = headers["strict-transport-security"]
    assert "max-age=31536000" in hsts and "includeSubDomains" in hsts
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"]


def test_patient_pages_and_the_patient_api_carry_the_headers_and_no_store(
    signed_in, care_team, imported
) -> None:
    patient = imported[0]
    addresses = [
        reverse("patients:list"),
        reverse("patients:twin", args=[patient.pk]),
        reverse("patients:notes", args=[patient.pk]),
        reverse("patients:whatif-new", args=[patient.pk]),
        reverse("patients:alerts"),
        "/api/v1/patients/",
        f"/api/v1/patients/{patient.pk}/",
        f"/api/v1/patients/{patient.pk}/fhir/",
        f"/api/v1/patients/{patient.pk}/notes/",
    ]
    for url in addresses:
        response = signed_in.get(url)
        assert response.status_code == 200, url
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp, url
        assert "script-src 'self'" in csp and "'unsafe-eval'" not in csp, url
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        assert response.headers["Referrer-Policy"] == "same-origin", url
        assert "no-store" in response.headers["Cache-Control"], url


def test_the_patient_api_with_a_token_is_not_stored_either(
    clinician, care_team, imported, api_token
) -> None:
    response = Client().get(
        f"/api/v1/patients/{imported[0].pk}/", HTTP_AUTHORIZATION=api_token(clinician)
    )
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]


def test_search_is_posted_and_no_address_on_the_pages_carries_patient_data(
    signed_in, care_team, imported
) -> None:
    patient = imported[0]
    listed = signed_in.get(reverse("patients:list")).content.decode()
    form = re.search(r"<form[^>]*>(?:(?!</form>).)*name=\"search\"", listed, re.S)
    assert form and re.search(r"method=\"post\"", form.group(0), re.I)
    # a search sent in the query string is not a search: nothing of it reaches the result
    searched_by_url = signed_in.get(reverse("patients:list"), {"search": patient.mrn})
    assert searched_by_url.status_code in (200, 405)

    pages = [
        signed_in.post(reverse("patients:list"), {"search": patient.family_name}, follow=True),
        signed_in.get(reverse("patients:twin", args=[patient.pk])),
        signed_in.get(reverse("patients:notes", args=[patient.pk])),
        signed_in.get(reverse("patients:whatif-new", args=[patient.pk])),
        signed_in.get(reverse("patients:alerts")),
    ]
    assert patient.mrn in pages[1].content.decode()  # the pages are about this patient
    for response in pages:
        assert response.status_code == 200
        html = response.content.decode()
        for address in _ADDRESS.findall(html):  # no link, script or form names the patient
            for value in identifiers(patient):
                assert value not in address, (response.wsgi_request.path, address)
        for hop, _ in getattr(response, "redirect_chain", []):
            assert all(value not in hop for value in identifiers(patient))

    api = signed_in.get("/api/v1/patients/", {"limit": 1})
    assert api.status_code == 200
    for link in (api.json().get("next"), api.json().get("previous")):
        for value in identifiers(patient):
            assert value not in (link or "")


@pytest.mark.django_db(transaction=True)
def test_no_log_record_of_an_import_pages_and_tasks_names_the_patient(
    caplog, clinician, make_user
) -> None:
    from patients.fhir.importer import bundle_import
    from patients.fhir.parse import BundleError
    from patients.models import CareTeam
    from patients.services import note_analysis_run, note_summary_refresh
    from tests.conftest import SYNTHEA
    from twins import services as twin_services

    caplog.set_level(logging.INFO)
    patient = bundle_import(
        raw=SYNTHEA[0].read_bytes(), channel="command", filename=SYNTHEA[0].name
    ).patient
    assert patient is not None
    # a refused bundle is logged too: with its reason, never its patient
    raw = json.loads(SYNTHEA[0].read_text())
    raw["entry"][0]["resource"]["birthDate"] = "not a date"
    with pytest.raises(BundleError):
        bundle_import(raw=json.dumps(raw).encode(), channel="command", filename="broken.json")

    team = CareTeam.objects.create(name="Log test")
    team.members.add(clinician)
    team.patients.add(patient)
    client = Client()
    client.force_login(clinician)
    client.post(reverse("patients:list"), {"search": patient.mrn})
    client.get(reverse("patients:twin", args=[patient.pk]))
    client.post(
        reverse("patients:note-new", args=[patient.pk]),
        {"title": "Review", "text": f"Seen {patient.given_name} today. BP 150/90.", "sign": "1"},
    )
    client.get(f"/api/v1/patients/{patient.pk}/fhir/")
    outsider = make_user("zed.other")
    other = Client()
    other.force_login(outsider)
    other.get(reverse("patients:twin", args=[patient.pk]))  # a denied access is logged as well

    # the tasks' services, as a worker runs them
    twin_services.snapshots_compute(patient_ids=[patient.pk], trigger="test")
    from patients.models import ClinicalNote

    for note in ClinicalNote.objects.filter(patient=patient):
        note_analysis_run(note_id=note.pk)
    note_summary_refresh(patient_id=patient.pk, triggered_by="system:test")

    assert len(caplog.records) > 0
    for record in caplog.records:
        text = record.getMessage() + " " + json.dumps(record.__dict__, default=str)
        for value in identifiers(patient):
            assert value not in text, (record.name, record.getMessage())


def _task_modules() -> list[str]:
    return ["patients.tasks", "twins.tasks", "devices.tasks", "audit.tasks", "research.tasks"]


def _project_tasks() -> dict[str, typing.Any]:
    import importlib

    from twinportal.celery import app

    for module in _task_modules():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            continue
    return {
        name: task
        for name, task in app.tasks.items()
        if not name.startswith("celery.") and getattr(task, "__module__", "").split(".")[0]
    }


def test_every_task_takes_ids_only() -> None:
    tasks = _project_tasks()
    assert "twins.tasks.twin_whatif" in tasks and "patients.tasks.note_analyse" in tasks
    for name, task in tasks.items():
        if not name.startswith(("patients.", "twins.", "devices.", "audit.", "research.")):
            continue
        hints = typing.get_type_hints(task.run)
        for param in inspect.signature(task.run).parameters.values():
            if param.name == "self":
                continue
            if param.name == "triggered_by":  # the actor's name (property 5), never patient data
                assert hints[param.name] is str
                continue
            assert param.name.endswith(("_id", "_ids")), (name, param.name)
            assert hints.get(param.name) in (int, list[int]), (name, param.name, hints)


@pytest.mark.django_db(transaction=True)
def test_queued_messages_carry_ids_only(monkeypatch, clinician, care_team, imported) -> None:
    """Every message the pages and services queue while a clinician works carries ints only."""
    from celery.app.task import Task

    sent: list[tuple[str, typing.Any, typing.Any]] = []

    class _Queued:
        id = "captured"

    def capture(self, args=None, kwargs=None, **options):  # type: ignore[no-untyped-def]
        sent.append((self.name, args, kwargs))
        return _Queued()

    monkeypatch.setattr(Task, "apply_async", capture)
    patient = imported[0]
    client = Client()
    client.force_login(clinician)
    client.post(
        reverse("patients:note-new", args=[patient.pk]),
        {"title": "Review", "text": f"{patient.family_name} seen. Start amlodipine.", "sign": "1"},
    )
    client.post(
        f"/api/v1/patients/{patient.pk}/whatif/",
        {
            "name": "",
            "plans": [
                {
                    "name": "A",
                    "items": [{"intervention": "ace_inhibitor", "start": str(date.today())}],
                }
            ],
        },
        content_type="application/json",
    )
    from twins import services as twin_services

    twin_services.recompute_run_start(patient_ids=[patient.pk], chunk_size=1)
    assert {name for name, _, _ in sent} >= {
        "patients.tasks.note_analyse",
        "patients.tasks.patient_note_summary_refresh",
        "twins.tasks.twin_whatif",
        "twins.tasks.twin_recompute_chunk",
    }, sent

    def ints_only(value: object) -> bool:
        if isinstance(value, (list, tuple)):
            return all(ints_only(v) for v in value)
        # an actor's name (a username or system:...) is the only text a message may carry
        if isinstance(value, str):
            return value == clinician.username or value.startswith("system:")
        return isinstance(value, int) and not isinstance(value, bool)

    for name, args, kwargs in sent:
        assert ints_only(list(args or [])), (name, args)
        assert not kwargs or all(ints_only(v) for v in kwargs.values()), (name, kwargs)
