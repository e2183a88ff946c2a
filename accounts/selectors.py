"""Reads for accounts: finding the API token a caller presents."""

from __future__ import annotations

import hashlib
import hmac

from accounts.models import ApiToken

TOKEN_TAG = "tpa_"
PREFIX_LENGTH = 8
#: ``tpa_`` + 8 prefix characters + ``_`` + 43 characters of ``secrets.token_urlsafe(32)``
TOKEN_LENGTH = len(TOKEN_TAG) + PREFIX_LENGTH + 1 + 43


def token_prefix(secret: str) -> str | None:
    """The lookup prefix of a well-formed token (``tpa_<prefix>_<secret>``), else None."""
    if len(secret) != TOKEN_LENGTH or not secret.startswith(TOKEN_TAG):
        return None
    if secret[len(TOKEN_TAG) + PREFIX_LENGTH] != "_":
        return None
    return secret[len(TOKEN_TAG) : len(TOKEN_TAG) + PREFIX_LENGTH]


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def api_token_for_secret(*, secret: str) -> ApiToken | None:
    """The token whose secret this is (in force or not), with its user, or None.

    The prefix narrows the search to (almost always) one row; the hash is compared in constant
    time, so the answer's timing says nothing about how much of a guess was right.
    """
    prefix = token_prefix(secret)
    if prefix is None:
        return None
    digest = secret_sha256(secret)
    for token in ApiToken.objects.filter(prefix=prefix).select_related("user"):
        if hmac.compare_digest(token.secret_sha256, digest):
            return token
    return None
