from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        # registers the API token's security scheme with drf-spectacular
        from accounts import schema  # noqa: F401
        from accounts.sessions import session_signed_in_record

        user_logged_in.connect(session_signed_in_record, dispatch_uid="accounts-signed-in-at")
