"""How the device token appears in the OpenAPI schema (imported by ``DevicesConfig.ready``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object

from devices.authentication import KEYWORD


# drf-spectacular's extension base class registers subclasses in an untyped __init_subclass__
class DeviceTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "devices.authentication.DeviceTokenAuthentication"
    name = "deviceToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scheme: dict[str, Any] = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=KEYWORD
        )
        scheme["description"] = (
            "A home device's own token, issued to one patient's device by a data manager in the "
            "admin site: `Authorization: Device tpd_...`. It is accepted by the device-readings "
            "endpoint only."
        )
        return scheme
