"""Shared fixtures: people, care teams and imported Synthea patients.

Database tests run against the real PostgreSQL (``twinportal.settings.test``); pure engine and
note-reader tests need no database at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still
# synchronous and safe, so Django's async-context guard is relaxed (browser tests need it).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SYNTHEA = sorted((FIXTURES / "synthea").glob("*.json"))


@pytest.fixture
def make_user(db: None) -> Callable[..., object]:
    from accounts.services import user_create

    def make(username: str, role: str = "clinician", **kwargs: object) -> object:
        return user_create(username=username, password="a-long-test-password", role=role, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def clinician(make_user: Callable[..., object]) -> object:
    return make_user(
        "ana.gp", first_name="Ana", last_name="Silva", professional_role="general practitioner"
    )


@pytest.fixture
def other_clinician(make_user: Callable[..., object]) -> object:
    return make_user(
        "ben.cardio", first_name="Ben", last_name="Okafor", professional_role="cardiologist"
    )


@pytest.fixture
def data_manager(make_user: Callable[..., object]) -> object:
    from patients.demo import data_managers_group

    user = make_user("dana.dm", role="data_manager")
    user.groups.add(data_managers_group())  # type: ignore[attr-defined]
    return user


@pytest.fixture
def api_token(db: None) -> Callable[..., str]:
    """``Authorization`` header value of a new API token for a user (``scope`` read unless given)."""
    from accounts.services import api_token_issue

    def issue(user: object, scope: str = "read") -> str:
        issued = api_token_issue(user=user, name="test", scope=scope, created_by=user)  # type: ignore[arg-type]
        return f"Bearer {issued.secret}"

    return issue


@pytest.fixture
def imported(db: None) -> list[object]:
    """The Synthea fixture bundles, imported through the real importer."""
    from patients.fhir.importer import bundle_import

    return [
        bundle_import(raw=path.read_bytes(), channel="command", filename=path.name).patient
        for path in SYNTHEA
    ]


@pytest.fixture
def care_team(clinician: object, imported: list[object]) -> object:
    """The clinician's team looks after the first two imported patients only."""
    from patients.models import CareTeam

    team = CareTeam.objects.create(name="Test practice")
    team.members.add(clinician)  # type: ignore[arg-type]
    team.patients.add(*imported[:2])  # type: ignore[arg-type]
    return team


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium for every browser test of a test process: one Playwright per process, so
    it lives here rather than in a package's conftest (two session fixtures would start two
    Playwright loops in one thread, which its sync API refuses)."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM_ARGS, chromium_path

    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()
