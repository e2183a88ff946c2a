"""Observations say why a value is implausible and whether their unit was assumed.

Stored rows get their reason from ``patients/data/plausible_ranges.csv`` (which also raised the
lowest plausible HbA1c from 3.5 % to 4 %); only rows outside a range are read and written.
"""

from functools import reduce
from operator import or_
from typing import Any

from django.db import migrations, models


def fill_reasons(apps: Any, schema_editor: Any) -> None:
    from patients import coding

    Observation = apps.get_model("patients", "Observation")
    ranges = coding.plausible_ranges()
    outside = reduce(
        or_,
        (
            models.Q(code__in=v.codes)
            & (models.Q(value__lt=ranges[v.key].low) | models.Q(value__gt=ranges[v.key].high))
            for v in coding.VARIABLES
        ),
    )
    changed = []
    for obs in Observation.objects.filter(outside).only("pk", "code", "value").iterator():
        variable = coding.VARIABLE_BY_CODE[obs.code]
        obs.implausible_reason = coding.implausible_reason(variable, obs.value)
        obs.implausible = bool(obs.implausible_reason)
        changed.append(obs)
    Observation.objects.bulk_update(changed, ["implausible", "implausible_reason"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0003_long_display_text"),
    ]

    operations = [
        migrations.AddField(
            model_name="observation",
            name="implausible_reason",
            field=models.TextField(
                blank=True,
                db_default="",
                default="",
                help_text="Why the value is implausible, from patients/data/plausible_ranges.csv.",
            ),
        ),
        migrations.AddField(
            model_name="observation",
            name="unit_assumed",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text="The value came without a unit and was read in its code's only unit "
                "(docs/import-policy.md).",
            ),
        ),
        migrations.RunPython(fill_reasons, migrations.RunPython.noop, elidable=True),
    ]
