"""Forms of the clinician's pages: they parse and validate; services do the writing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django import forms

from models_engine.treatments import MAX_DOSE, label_for
from models_engine.whatif import MAX_PLANS
from patients import pages
from twins.services import PlanItemInput


class PatientListForm(forms.Form):
    """Search, filters and sort of My patients. Posted, so a name or MRN never reaches a URL."""

    search = forms.CharField(required=False, max_length=100, label="Name or MRN", strip=True)
    sort = forms.ChoiceField(
        required=False, choices=list(pages.SORT_LABELS.items()), label="Sort by"
    )
    condition = forms.ChoiceField(
        required=False,
        choices=[("", "Any condition"), *pages.CONDITION_FILTERS.items()],
        label="Condition",
    )
    risk = forms.ChoiceField(
        required=False,
        choices=[("", "Any risk"), *((k, v[0]) for k, v in pages.RISK_FILTERS.items())],
        label="Risk",
    )
    reading = forms.ChoiceField(
        required=False,
        choices=[("", "Any last reading"), *pages.READING_FILTERS.items()],
        label="Last reading",
    )
    alerts_only = forms.BooleanField(required=False, label="Only patients with open alerts")

    def to_query(self) -> pages.ListQuery:
        d = self.cleaned_data
        return pages.ListQuery(
            search=d.get("search") or "",
            sort=d.get("sort") or "name",
            condition=d.get("condition") or "",
            risk=d.get("risk") or "",
            reading=d.get("reading") or "",
            alerts_only=bool(d.get("alerts_only")),
        )


class AcknowledgeForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        strip=True,
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why the alert needs nothing more, or what was done."},
    )


class NoteForm(forms.Form):
    title = forms.CharField(required=False, max_length=255, label="Title")
    text = forms.CharField(
        strip=False,
        label="Note",
        widget=forms.Textarea(attrs={"rows": 14}),
        error_messages={"required": "A note cannot be empty."},
    )

    def clean_text(self) -> str:
        text: str = self.cleaned_data["text"]
        if not text.strip():
            raise forms.ValidationError("A note cannot be empty.")
        return text


class WhatIfNameForm(forms.Form):
    name = forms.CharField(max_length=120, strip=True, label="Save as")


INTENSITIES = [("", "—"), ("low", "low"), ("moderate", "moderate"), ("high", "high")]
ITEMS_PER_PLAN = 3


#: Prefix of an intervention choice that stops a drug class the patient takes.
STOP = "stop:"


class PlanForm(forms.Form):
    """One plan: a name and up to three interventions, each with a start (and optional stop);
    an intervention may also stop one of the drug classes in ``taking`` from its start on."""

    name = forms.CharField(required=False, max_length=60, label="Plan name")

    def __init__(
        self, *args: Any, today: dt.date, taking: Sequence[str] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        choices: list[Any] = [("", "—"), ("Add or change", pages.treatment_choices())]
        if taking:
            stops = [(f"{STOP}{k}", f"Stop {pages.mid_sentence(label_for(k))}") for k in taking]
            choices.append(("Stop a drug taken now", stops))
        for k in range(ITEMS_PER_PLAN):
            self.fields[f"item{k}_intervention"] = forms.ChoiceField(
                required=False, choices=choices, label="Intervention"
            )
            self.fields[f"item{k}_intensity"] = forms.ChoiceField(
                required=False, choices=INTENSITIES, label="Statin intensity"
            )
            self.fields[f"item{k}_dose"] = forms.FloatField(
                required=False,
                min_value=0.25,
                max_value=MAX_DOSE,
                initial=1.0,
                label="Dose (× standard)",
                widget=forms.NumberInput(attrs={"step": "0.25"}),
            )
            self.fields[f"item{k}_start"] = forms.DateField(
                required=False,
                label="Start",
                initial=today,
                widget=forms.DateInput(
                    format="%Y-%m-%d", attrs={"type": "date", "min": today.isoformat()}
                ),
            )
            self.fields[f"item{k}_stop"] = forms.DateField(
                required=False,
                label="Stop (optional)",
                widget=forms.DateInput(
                    format="%Y-%m-%d", attrs={"type": "date", "min": today.isoformat()}
                ),
            )

    def item_rows(self) -> list[list[forms.BoundField]]:
        names = ("intervention", "intensity", "dose", "start", "stop")
        return [[self[f"item{k}_{n}"] for n in names] for k in range(ITEMS_PER_PLAN)]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        items = []
        for k in range(ITEMS_PER_PLAN):
            key = data.get(f"item{k}_intervention")
            if not key:
                continue
            start = data.get(f"item{k}_start") or self.today
            if start < self.today:
                self.add_error(f"item{k}_start", "The start may not be in the past.")
                continue
            stop = data.get(f"item{k}_stop")
            if key.startswith(STOP):
                if stop is not None:
                    self.add_error(f"item{k}_stop", "A drug that is stopped has no stop date.")
                    continue
                # dose and intensity are those of the course being stopped
                items.append(
                    PlanItemInput(intervention=key.removeprefix(STOP), start=start, action="stop")
                )
                continue
            if stop is not None and stop <= start:
                self.add_error(f"item{k}_stop", "The stop must be after the start.")
                continue
            intensity = data.get(f"item{k}_intensity") or None
            if key == "statin" and intensity is None:
                intensity = "moderate"
            items.append(
                PlanItemInput(
                    intervention=key,
                    start=start,
                    dose=data.get(f"item{k}_dose") or 1.0,
                    stop=stop,
                    intensity=intensity if key == "statin" else None,
                )
            )
        data["items"] = items
        if items and not (data.get("name") or "").strip():
            self.add_error("name", "Give the plan a name.")
        return data


def plan_forms(data: Any | None, *, today: dt.date, taking: Sequence[str] = ()) -> list[PlanForm]:
    return [PlanForm(data, prefix=f"plan{i}", today=today, taking=taking) for i in range(MAX_PLANS)]


def plans_from(forms_: list[PlanForm]) -> tuple[dict[str, list[PlanItemInput]], list[str]]:
    """The filled-in plans by name, and page-level problems (none chosen, a name twice)."""
    plans: dict[str, list[PlanItemInput]] = {}
    problems = []
    for f in forms_:
        items = f.cleaned_data.get("items", [])
        if not items:
            continue
        name = f.cleaned_data["name"].strip()
        if name in plans:
            problems.append(f"Two plans are named “{name}”; give each its own name.")
        plans[name] = items
    if not plans and not problems:
        problems.append("Choose at least one intervention for at least one plan.")
    return plans, problems
