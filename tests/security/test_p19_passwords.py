"""Property 19: passwords of at least 12 characters, 64 and far more accepted, common passwords
refused, no composition rules, no forced rotation and no secret questions (NIST SP 800-63B).

Checked through the configured validators and Django's own forms for setting and changing a
password (the admin's and the reset flow's), as people meet them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.contrib.auth.password_validation import (
    get_default_password_validators,
    validate_password,
)
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

OLD = "a-long-test-password"  # the fixtures' password


def set_password(user: Any, new: str) -> SetPasswordForm:
    form = SetPasswordForm(user, {"new_password1": new, "new_password2": new})
    if form.is_valid():
        form.save()
    return form


def change_password(user: Any, new: str) -> PasswordChangeForm:
    form = PasswordChangeForm(
        user, {"old_password": OLD, "new_password1": new, "new_password2": new}
    )
    if form.is_valid():
        form.save()
    return form


def test_the_validators_are_length_common_and_similarity_only() -> None:
    names = {type(v).__name__ for v in get_default_password_validators()}
    assert names == {
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "UserAttributeSimilarityValidator",
    }


@pytest.mark.parametrize("form", [set_password, change_password])
def test_eleven_characters_are_refused_and_twelve_accepted(clinician: Any, form: Any) -> None:
    short = form(clinician, "vbnlake48xq")
    assert not short.is_valid()
    assert "at least 12 characters" in " ".join(short.errors["new_password2"])

    accepted = form(clinician, "vbnlake48xqz")
    assert accepted.is_valid(), accepted.errors
    clinician.refresh_from_db()
    assert clinician.check_password("vbnlake48xqz")


@pytest.mark.parametrize("length", [64, 128, 1000])
@pytest.mark.parametrize("form", [set_password, change_password])
def test_long_passphrases_are_accepted_whole(clinician: Any, form: Any, length: int) -> None:
    passphrase = ("orchid kettle uplands marrow " * 40)[:length]
    assert len(passphrase) == length

    assert form(clinician, passphrase).is_valid()

    clinician.refresh_from_db()
    assert clinician.check_password(passphrase)
    assert not clinician.check_password(passphrase[:-1])  # every character counts


@pytest.mark.parametrize("common", ["qwerty123456", "1q2w3e4r5t6y", "123456123456"])
def test_common_passwords_are_refused(clinician: Any, common: str) -> None:
    assert len(common) >= 12
    form = set_password(clinician, common)
    assert not form.is_valid()
    assert "too common" in " ".join(form.errors["new_password2"])


@pytest.mark.parametrize(
    "no_composition",
    [
        "every word lowercase here",  # no capital, digit or symbol
        "839274619204518",  # digits only
        "ZEBRAHOLLOWMIST",  # capitals only
        "ünïcödé pässphrâse ✓",  # any character, spaces included
    ],
)
def test_no_composition_rules(clinician: Any, no_composition: str) -> None:
    validate_password(no_composition, clinician)  # raises if refused
    assert set_password(clinician, no_composition).is_valid()


def test_no_forced_rotation(clinician: Any) -> None:
    assert not any("PASSWORD" in name and "AGE" in name for name in dir(settings))
    assert not any(
        f.name
        for f in clinician._meta.get_fields()
        if "password" in f.name and f.name != "password"
    )
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=5 * 365)):
        clinician.refresh_from_db()
        assert clinician.check_password(OLD)
        client = Client()
        client.force_login(clinician)  # years later, no change of password demanded
        assert client.get(reverse("patients:list")).status_code == 200


def test_no_secret_questions(clinician: Any) -> None:
    fields = {f.name for f in clinician._meta.get_fields()}
    assert not {n for n in fields if any(w in n for w in ("question", "answer", "hint"))}
    assert set(SetPasswordForm(clinician).fields) == {"new_password1", "new_password2"}
    assert set(PasswordChangeForm(clinician).fields) == {
        "old_password",
        "new_password1",
        "new_password2",
    }
