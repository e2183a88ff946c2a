"""The second step's form: the six-digit code of an authenticator app."""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator


class CodeForm(forms.Form):
    code = forms.CharField(
        label="6-digit code",
        max_length=6,
        validators=[
            RegexValidator(r"^[0-9]{6}$", "Enter the 6 digits your authenticator app shows.")
        ],
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9]{6}",
                "autofocus": True,
            }
        ),
    )
