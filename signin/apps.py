from django.apps import AppConfig


class SigninConfig(AppConfig):
    name = "signin"
    verbose_name = "Signing in"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_login_failed

        from signin.events import sign_in_failed_log, sign_in_locked_out_log

        user_login_failed.connect(sign_in_failed_log, dispatch_uid="signin-failed-log")
        user_locked_out.connect(sign_in_locked_out_log, dispatch_uid="signin-locked-out-log")
