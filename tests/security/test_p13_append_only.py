"""Property 13: audit rows are append-only. PostgreSQL refuses UPDATE, DELETE and TRUNCATE of the
audit table from the application's own connection, and the admin lets nobody, a superuser
included, add, change or delete a row."""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.db import DatabaseError, connection, transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from tests.second_factor import verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(clinician) -> AuditEvent:
    return AuditEvent.objects.create(
        at=timezone.now(),
        actor=clinician,
        actor_name=clinician.username,
        patient_id=1,
        action=AuditEvent.Action.READ,
        resource="patients:twin",
        request_id="abcdef123456",
    )


def _refused(sql: str, params: list[object] | None = None) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


def test_it_refuses_a_raw_sql_update_from_the_application_connection(event) -> None:
    _refused("UPDATE audit_auditevent SET actor_name = 'someone else' WHERE id = %s", [event.pk])
    event.refresh_from_db()
    assert event.actor_name == "ana.gp"


def test_it_refuses_a_raw_sql_delete_from_the_application_connection(event) -> None:
    _refused("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_it_refuses_a_truncate_on_a_connection_without_the_test_only_switch(event) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL twinportal.audit_truncate = 'deny'")
        cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_it_refuses_orm_updates_and_deletes_too(event) -> None:
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action=AuditEvent.Action.WRITE)
    with pytest.raises(DatabaseError), transaction.atomic():
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).action == AuditEvent.Action.READ


def test_the_admin_lets_a_superuser_look_but_not_add_change_or_delete(event) -> None:
    from accounts.models import User

    root = User.objects.create_superuser(
        "root", "root@example.org", "a-long-test-password", role="administrator"
    )
    admin = site._registry[AuditEvent]
    request = RequestFactory().get("/")
    request.user = root
    assert admin.has_view_permission(request, event)
    assert not admin.has_add_permission(request)
    assert not admin.has_change_permission(request, event)
    assert not admin.has_delete_permission(request, event)
    assert "delete_selected" not in admin.get_actions(request)

    client = Client()
    verified_login(client, root)
    listing = client.get(reverse("admin:audit_auditevent_changelist"))
    assert listing.status_code == 200 and "abcdef123456" in listing.content.decode()
    delete = client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
