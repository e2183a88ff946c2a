"""The emergency access request form: the patient (record number or MRN) and a mandatory reason."""

from __future__ import annotations

from typing import Any

from django import forms

from audit.services import MIN_REASON_LENGTH


class EmergencyAccessForm(forms.Form):
    patient = forms.IntegerField(
        required=False, min_value=1, label="Patient record number", widget=forms.NumberInput()
    )
    mrn = forms.CharField(required=False, max_length=64, label="or MRN", strip=True)
    reason = forms.CharField(
        min_length=MIN_REASON_LENGTH,
        max_length=2000,
        strip=True,
        label="Why you need this record now",
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("patient") and not data.get("mrn"):
            raise forms.ValidationError("Give the patient's record number or MRN.")
        return data
