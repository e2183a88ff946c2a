"""``manage.py twin_recompute`` dispatches a run as beat does, and refuses bad options."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from patients.models import Patient
from tests.twins.conftest import purge_queues
from twins.models import RecomputeRun


@pytest.mark.django_db
def test_it_dispatches_a_run_of_the_patients_due(imported: list[Patient]) -> None:
    out = io.StringIO()
    call_command("twin_recompute", "--chunk-size", "2", stdout=out)
    purge_queues()  # no worker here: the chunks' messages are not needed
    run = RecomputeRun.objects.get()
    alive = Patient.objects.filter(deceased_at__isnull=True).count()
    assert run.kind == RecomputeRun.Kind.MANUAL and run.patients_total == alive
    assert run.chunks.count() == 2 and f"Run {run.pk}: {alive} patients due" in out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [(["--stale-days", "-1"], "--stale-days"), (["--chunk-size", "0"], "--chunk-size")],
)
def test_it_refuses_bad_options(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("twin_recompute", *args)
