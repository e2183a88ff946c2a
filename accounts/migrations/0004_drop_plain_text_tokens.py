"""The API's earlier tokens (``rest_framework.authtoken``) were stored in plain text and never
expired; API tokens replace them, so their table goes, with every secret in it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_apitoken")]

    operations = [
        migrations.RunSQL(
            "DROP TABLE IF EXISTS authtoken_token", reverse_sql=migrations.RunSQL.noop
        )
    ]
