from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Home devices"

    def ready(self) -> None:
        # registers the device token's security scheme with drf-spectacular
        from devices import schema  # noqa: F401
