"""API tokens: stored hashed (the secret is nowhere in the database), scoped, expiring, revocable in
the admin, and ended by a password change or by disabling the account; a token acts as its user
(care teams and the audit log included)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.services import api_token_issue, users_disable
from audit.models import AuditEvent
from tests.patients.bundles import dumps, load
from tests.second_factor import verified_login

pytestmark = pytest.mark.django_db

PATIENTS = "/api/v1/patients/"
IMPORT = "/api/v1/fhir/bundles/"
CHANGELIST = "admin:accounts_apitoken_changelist"


def issue(user: Any, scope: str = "read", **kwargs: Any) -> str:
    return api_token_issue(
        user=user, name="lab feed", scope=scope, created_by=user, **kwargs
    ).secret


def call(secret: str, method: str = "get", url: str = PATIENTS, keyword: str = "Bearer") -> Any:
    return getattr(Client(), method)(url, HTTP_AUTHORIZATION=f"{keyword} {secret}")


def note(secret: str, patient: Any) -> Any:
    return Client().post(
        f"/api/v1/patients/{patient.pk}/notes/",
        {"text": "Draft."},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )


def import_bundle(secret: str) -> Any:
    return Client().post(
        IMPORT,
        dumps(load()),
        content_type="application/fhir+json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )


def test_the_secret_is_nowhere_in_the_database_only_its_sha256(clinician: Any) -> None:
    secret = issue(clinician)
    assert re.fullmatch(r"tpa_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}", secret)
    assert call(secret).status_code == 200
    row = ApiToken.objects.get()
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert row.prefix == secret[4:12]
    random_part = secret[13:]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(
                f'SELECT row_to_json(t)::text FROM "{table}" t'
            )  # table names from the catalogue
            for (text,) in cursor.fetchall():
                assert random_part not in text, table


def test_bearer_and_token_keywords_are_both_accepted(clinician: Any) -> None:
    secret = issue(clinician)
    assert call(secret, keyword="Bearer").status_code == 200
    assert call(secret, keyword="Token").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["Bearer nope", "Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "Bearer tpa_x", "Bearer a b"],
)
def test_unknown_and_malformed_tokens_are_refused(clinician: Any, authorization: str) -> None:
    issue(clinician)
    response = Client().get(PATIENTS, HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_read_token_reads_as_its_user_within_the_care_team(
    clinician: Any, care_team: Any, imported: list[Any]
) -> None:
    secret = issue(clinician)

    listed = call(secret, url=f"{PATIENTS}?limit=10").json()
    assert {p["id"] for p in listed["results"]} == {p.pk for p in imported[:2]}
    assert call(secret, url=f"{PATIENTS}{imported[0].pk}/").status_code == 200
    assert call(secret, url=f"{PATIENTS}{imported[2].pk}/").status_code == 404  # not a 403


def test_a_read_token_may_not_write(clinician: Any, care_team: Any, imported: list[Any]) -> None:
    secret = issue(clinician)

    refused = note(secret, imported[0])

    assert refused.status_code == 403
    assert "scope" in refused.json()["detail"]
    assert not imported[0].notes.exists()


def test_an_import_token_imports_and_does_nothing_else(data_manager: Any) -> None:
    secret = issue(data_manager, "import")

    assert import_bundle(secret).status_code == 201
    assert call(secret).status_code == 403  # not even a read
    assert call(secret, "post", "/api/v1/emergency-access/").status_code == 403


def test_a_read_token_of_a_data_manager_cannot_import(data_manager: Any) -> None:
    assert import_bundle(issue(data_manager, "read")).status_code == 403


def test_import_tokens_are_for_people_who_may_import(clinician: Any) -> None:
    with pytest.raises(ValidationError, match="data managers"):
        issue(clinician, "import")


def test_a_token_expires_after_90_days_by_default(clinician: Any) -> None:
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        secret = issue(clinician)
    assert ApiToken.objects.get().expires_at == now + dt.timedelta(days=90)
    with time_machine.travel(now + dt.timedelta(days=89, hours=23)):
        assert call(secret).status_code == 200
    with time_machine.travel(now + dt.timedelta(days=90)):
        expired = call(secret)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


def test_a_token_lasts_at_most_a_year(clinician: Any) -> None:
    now = timezone.now()
    assert issue(clinician, expires_at=now + dt.timedelta(days=365))
    with pytest.raises(ValidationError, match="at most 365 days"):
        issue(clinician, expires_at=now + dt.timedelta(days=366))
    with pytest.raises(ValidationError, match="future"):
        issue(clinician, expires_at=now - dt.timedelta(minutes=1))


def test_a_password_change_ends_the_users_tokens(clinician: Any) -> None:
    from django.contrib.auth.forms import PasswordChangeForm

    secret = issue(clinician)
    new = "another-long-passphrase"
    form = PasswordChangeForm(
        clinician,
        {"old_password": "a-long-test-password", "new_password1": new, "new_password2": new},
    )
    assert form.is_valid(), form.errors
    form.save()

    refused = call(secret)
    assert refused.status_code == 401 and "password" in refused.json()["detail"]
    assert call(issue(User.objects.get(pk=clinician.pk))).status_code == 200  # a new one works


def test_disabling_the_account_ends_its_tokens_for_good(
    clinician: Any, other_clinician: Any
) -> None:
    first, second = issue(clinician), issue(other_clinician)

    users_disable(user_ids=[clinician.pk])
    other_clinician.is_active = False
    other_clinician.save()
    assert call(first).status_code == 401 and call(second).status_code == 401
    User.objects.update(is_active=True)

    assert call(first).status_code == 401 and call(second).status_code == 401


def test_a_disabled_users_token_is_refused_however_the_account_was_disabled(clinician: Any) -> None:
    secret = issue(clinician)
    User.objects.filter(pk=clinician.pk).update(is_active=False)  # no save(), no service
    assert call(secret).status_code == 401


def test_a_tokens_reads_are_in_the_audit_log_under_its_user(
    clinician: Any, care_team: Any, imported: list[Any]
) -> None:
    secret = issue(clinician)

    response = call(secret, url=f"{PATIENTS}{imported[0].pk}/")

    [row] = AuditEvent.objects.filter(request_id=response["X-Request-ID"])
    assert (row.actor_id, row.actor_name, row.patient_id) == (
        clinician.pk,
        clinician.username,
        imported[0].pk,
    )


def test_last_use_is_recorded(clinician: Any) -> None:
    secret = issue(clinician)
    assert ApiToken.objects.get().last_used_at is None
    call(secret)
    assert ApiToken.objects.get().last_used_at is not None


def test_the_schema_documents_the_token_scheme() -> None:
    schema = Client().get("/api/schema/?format=json").json()
    scheme = schema["components"]["securitySchemes"]["apiToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "read" in scheme["description"] and "import" in scheme["description"]
    assert {"apiToken": []} in schema["paths"][PATIENTS]["get"]["security"]
    assert {"apiToken": []} in schema["paths"][IMPORT]["post"]["security"]
    assert "tokenAuth" not in schema["components"]["securitySchemes"]


# The admin site


def test_a_data_manager_issues_a_token_in_the_admin_and_sees_the_secret_once(
    data_manager: Any, clinician: Any
) -> None:
    client = verified_login(Client(), data_manager)

    response = client.post(
        reverse("admin:accounts_apitoken_add"),
        {"user": clinician.pk, "name": "Ward dashboard", "scope": "read", "expires_at": ""},
        follow=True,
    )

    assert response.status_code == 200
    shown = re.findall(r"tpa_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}", response.content.decode())
    assert len(shown) == 1
    token = ApiToken.objects.get()
    assert (token.user, token.scope, token.created_by) == (clinician, "read", data_manager)
    assert call(shown[0]).status_code == 200
    for page in (reverse(CHANGELIST), reverse("admin:accounts_apitoken_change", args=[token.pk])):
        body = client.get(page).content.decode()
        assert shown[0] not in body and token.secret_sha256 not in body
        assert f"tpa_{token.prefix}" in body


def test_the_admin_refuses_an_import_token_for_a_clinician(
    data_manager: Any, clinician: Any
) -> None:
    client = verified_login(Client(), data_manager)
    response = client.post(
        reverse("admin:accounts_apitoken_add"),
        {"user": clinician.pk, "name": "x", "scope": "import", "expires_at": ""},
    )
    assert response.status_code == 200 and "data managers" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoking_in_the_admin_ends_the_token_and_nothing_deletes_it(
    data_manager: Any, clinician: Any
) -> None:
    secret = issue(clinician)
    token = ApiToken.objects.get()
    client = verified_login(Client(), data_manager)

    response = client.post(
        reverse(CHANGELIST),
        {"action": "revoke_selected", "_selected_action": [token.pk]},
        follow=True,
    )

    assert "1 token revoked" in response.content.decode()
    refused = call(secret)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    token.refresh_from_db()
    assert token.revoked_by == data_manager and token.revoked_at is not None
    assert "Revoked" in client.get(reverse(CHANGELIST)).content.decode()
    delete = reverse("admin:accounts_apitoken_delete", args=[token.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_the_admin_lists_tokens_by_status(
    data_manager: Any, clinician: Any, other_clinician: Any
) -> None:
    def named(user: Any, name: str) -> ApiToken:
        return api_token_issue(user=user, name=name, scope="read", created_by=data_manager).token

    named(clinician, "still active")
    revoked = named(clinician, "revoked one")
    named(other_clinician, "ended by disabling")
    with time_machine.travel(timezone.now() - dt.timedelta(days=100)):
        issue(data_manager)  # expired by now
    revoked.revoked_at = timezone.now()
    revoked.save()
    users_disable(user_ids=[other_clinician.pk])
    User.objects.filter(pk=other_clinician.pk).update(is_active=True)
    client = verified_login(Client(), data_manager)

    def listed(status: str) -> set[str]:
        page = client.get(reverse(CHANGELIST), {"status": status})
        return {t.name for t in page.context["cl"].result_list}

    assert listed("active") == {"still active"}
    assert listed("revoked") == {"revoked one"}
    assert listed("superseded") == {"ended by disabling"}
    assert listed("expired") == {"lab feed"}


def test_a_token_cannot_be_edited_beyond_its_name(data_manager: Any, clinician: Any) -> None:
    issue(clinician)
    token = ApiToken.objects.get()
    client = verified_login(Client(), data_manager)
    change = reverse("admin:accounts_apitoken_change", args=[token.pk])

    client.post(change, {"name": "renamed", "scope": "import", "user": data_manager.pk})

    token.refresh_from_db()
    assert (token.name, token.scope, token.user) == ("renamed", "read", clinician)


def test_clinicians_cannot_reach_api_tokens_in_the_admin(clinician: Any) -> None:
    client = Client()
    client.force_login(clinician)
    assert client.get(reverse(CHANGELIST)).status_code in (302, 403)
