"""Every patient-scoped address of the project, found from the URLconf and the OpenAPI schema, and
a patient with one object of every kind those addresses name (a note, a snapshot, an alert, a
what-if run), so a test can fill in every address for one patient. A new endpoint is picked up
without editing the tests; one naming a new kind of object fails until ``objects_of`` covers it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

#: Areas outside the clinician's world: the admin (data managers, own tests) and the schema.
SKIPPED_PREFIXES = ("admin/", "api/schema/", "api/docs/", "static/")
_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
_SCHEMA_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    """One address template and how it was found (``urlconf`` or ``schema`` with its method)."""

    template: str
    params: tuple[str, ...]
    source: str
    method: str = ""

    def fill(self, values: dict[str, int]) -> str:
        missing = [p for p in self.params if p not in values]
        assert not missing, f"{self.template}: no test object for {missing}; add it to objects_of"
        if self.source == "schema":
            return _SCHEMA_PARAM.sub(lambda m: str(values[m.group(1)]), self.template)
        return "/" + _PARAM.sub(lambda m: str(values[m.group(1)]), self.template)


def _walk(patterns: list[URLPattern | URLResolver], prefix: str = "") -> list[str]:
    out: list[str] = []
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            out.extend(_walk(p.url_patterns, route))
        else:
            out.append(route)
    return out


def urlconf_routes() -> list[Route]:
    """Every address of the URLconf with a parameter (an id), outside the skipped areas."""
    routes = []
    for template in _walk(get_resolver().url_patterns):
        params = tuple(_PARAM.findall(template))
        if params and not template.startswith(SKIPPED_PREFIXES):
            routes.append(Route(template, params, "urlconf"))
    return routes


def schema_routes() -> list[Route]:
    """Every operation of the OpenAPI schema (drf-spectacular's generator) with a path parameter."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    routes = []
    for template, item in schema["paths"].items():
        params = tuple(_SCHEMA_PARAM.findall(template))
        if not params:
            continue
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                routes.append(Route(template, params, "schema", method))
    return routes


def objects_of(patient, author) -> dict[str, int]:
    """One object of every kind a patient-scoped address names, all of this patient (and its
    notes summary, which an address may show)."""
    from patients.models import ClinicalNote
    from patients.services import note_summary_refresh
    from twins.models import TaskState, TwinAlert, TwinSnapshot, WhatIfRun

    now = timezone.now()
    note = ClinicalNote.objects.create(
        patient=patient,
        author=author,
        author_name="Someone",
        written_at=now,
        text="Seen today.",
        status=ClinicalNote.Status.SIGNED,
        signed_at=now,
    )
    note_summary_refresh(patient_id=patient.pk)
    snapshot = TwinSnapshot.objects.filter(patient=patient).latest("computed_at")
    alert = TwinAlert.objects.create(
        patient=patient,
        kind=TwinAlert.Kind.DRIFT,
        dedupe_key=f"routes-{patient.pk}",
        snapshot=snapshot,
        variable="sbp",
        message="A reading outside the forecast",
        evidence={},
        created_at=now,
    )
    run = WhatIfRun.objects.create(
        patient=patient,
        requested_by=author,
        plans={},
        status=TaskState.PENDING,
        created_at=now,
    )
    return {
        "patient_id": patient.pk,
        "note_id": note.pk,
        "snapshot_id": snapshot.pk,
        "alert_id": alert.pk,
        "run_id": run.pk,
    }


def request(client, route: Route, url: str):
    """Call an address as its route says: the schema's method, else GET (POST when GET is 405)."""
    if route.source == "schema":
        return getattr(client, route.method)(url, {}, content_type="application/json")
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url, {})
    return response
