"""How the API token appears in the OpenAPI schema (imported by ``AccountsConfig.ready``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object

from accounts.authentication import KEYWORD


# drf-spectacular's extension base class registers subclasses in an untyped __init_subclass__
class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scheme: dict[str, Any] = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=KEYWORD
        )
        scheme["description"] = (
            "A person's or an integration's API token, issued by a data manager in the admin "
            "site (Accounts → API tokens): `Authorization: Bearer tpa_...` (`Token tpa_...` is "
            "accepted too). It acts as its user, care teams included, within its scope: `read` "
            "allows GET only; `import` allows the FHIR bundle import only. It expires (90 days "
            "unless set otherwise) and ends when it is revoked, when its user's password changes "
            "and when the account is disabled."
        )
        return scheme
