"""Property 8: the session key changes at sign-in; after sign-out the old cookie is refused;
disabling an account ends its sessions, and enabling it again does not bring them back."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.middleware import SessionMiddleware
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.models import User
from accounts.services import users_disable
from tests.second_factor import verified_login

pytestmark = pytest.mark.django_db

LIST = reverse("patients:list")
API = "/api/v1/patients/"


def store() -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    assert client.get(LIST).status_code == 200
    return client


def replay(cookie: str) -> Client:
    """A new browser that presents an old session cookie."""
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = cookie
    return client


def assert_signed_out(client: Client) -> None:
    page = client.get(LIST)
    assert page.status_code == 302 and page["Location"].startswith(reverse("login"))
    assert client.get(API).status_code == 401


def test_the_session_key_changes_at_sign_in(clinician: Any) -> None:
    from django.contrib.auth import login

    before = store()()
    before["draft"] = "kept across sign-in"
    before.create()
    request = RequestFactory().post(reverse("login"))
    request.COOKIES[settings.SESSION_COOKIE_NAME] = before.session_key
    SessionMiddleware(lambda r: None).process_request(request)
    request.user = AnonymousUser()

    login(request, clinician, backend="django.contrib.auth.backends.ModelBackend")

    assert request.session.session_key != before.session_key
    assert not store()().exists(before.session_key)  # a fixed session key is worth nothing
    assert request.session["draft"] == "kept across sign-in"


def test_signing_in_twice_gives_two_different_session_keys(clinician: Any) -> None:
    first, second = signed_in(clinician), signed_in(clinician)
    key = settings.SESSION_COOKIE_NAME
    assert first.cookies[key].value != second.cookies[key].value


def test_after_sign_out_the_old_cookie_is_refused(clinician: Any) -> None:
    client = signed_in(clinician)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value

    assert client.post(reverse("logout")).status_code == 302

    assert not store()().exists(cookie)
    assert_signed_out(replay(cookie))


def test_an_administrator_disabling_an_account_in_the_admin_ends_its_sessions_for_good(
    clinician: Any, make_user: Any
) -> None:
    browser = signed_in(clinician)
    cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
    admin = verified_login(Client(), make_user("root", role="administrator"))

    response = admin.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "disable_selected", "_selected_action": [clinician.pk]},
        follow=True,
    )

    assert response.status_code == 200 and "1 account disabled" in response.content.decode()
    assert_signed_out(browser)
    clinician.refresh_from_db()
    clinician.is_active = True
    clinician.save()
    assert_signed_out(replay(cookie))
    assert signed_in(clinician)  # signing in again works


def test_unticking_active_in_the_admins_user_form_ends_the_sessions_for_good(
    clinician: Any, make_user: Any
) -> None:
    cookie = signed_in(clinician).cookies[settings.SESSION_COOKIE_NAME].value
    admin = verified_login(Client(), make_user("root", role="administrator"))
    change = reverse("admin:accounts_user_change", args=[clinician.pk])
    form = admin.get(change).context["adminform"].form
    data = {
        name: value
        for name, value in (
            (name, form[name].value()) for name in form.fields if name != "password"
        )
        if value is not None and name not in ("is_active", "groups", "user_permissions")
    }
    data.update(
        date_joined_0=clinician.date_joined.date().isoformat(),
        date_joined_1=clinician.date_joined.time().strftime("%H:%M:%S"),
        last_login_0="",
        last_login_1="",
    )
    data.pop("date_joined", None)
    data.pop("last_login", None)

    response = admin.post(change, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    clinician.refresh_from_db()
    assert not clinician.is_active
    assert_signed_out(replay(cookie))
    clinician.is_active = True
    clinician.save()
    assert_signed_out(replay(cookie))


def test_disabling_through_the_service_or_the_model_ends_the_sessions_for_good(
    clinician: Any, other_clinician: Any
) -> None:
    first = signed_in(clinician).cookies[settings.SESSION_COOKIE_NAME].value
    second = signed_in(other_clinician).cookies[settings.SESSION_COOKIE_NAME].value

    assert users_disable(user_ids=[clinician.pk]) == 1
    other_clinician.is_active = False
    other_clinician.save()
    User.objects.filter(pk__in=[clinician.pk, other_clinician.pk]).update(is_active=True)

    assert_signed_out(replay(first))
    assert_signed_out(replay(second))


def test_disabling_with_a_bare_update_ends_the_sessions_and_tokens_for_good(
    clinician: Any,
) -> None:
    """A writer that bypasses the model (QuerySet.update, SQL) still starts a new generation:
    PostgreSQL's trigger does it."""
    from accounts.services import api_token_issue

    cookie = signed_in(clinician).cookies[settings.SESSION_COOKIE_NAME].value
    issued = api_token_issue(user=clinician, name="reporting", scope="read", created_by=clinician)
    before = User.objects.get(pk=clinician.pk).session_generation

    User.objects.filter(pk=clinician.pk).update(is_active=False)
    assert User.objects.get(pk=clinician.pk).session_generation == before + 1
    User.objects.filter(pk=clinician.pk).update(is_active=True)
    assert User.objects.get(pk=clinician.pk).session_generation == before + 1

    assert_signed_out(replay(cookie))
    token_call = Client().get(API, HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert token_call.status_code == 401


def test_a_password_change_ends_the_other_sessions(clinician: Any) -> None:
    cookie = signed_in(clinician).cookies[settings.SESSION_COOKIE_NAME].value

    clinician.set_password("a-new-and-long-password")
    clinician.save()

    assert_signed_out(replay(cookie))


def test_saving_an_account_for_other_reasons_keeps_its_sessions(clinician: Any) -> None:
    browser = signed_in(clinician)
    clinician.first_name = "Ana Maria"
    clinician.save()
    clinician.is_active = True
    clinician.save(update_fields=["is_active"])

    assert browser.get(LIST).status_code == 200
