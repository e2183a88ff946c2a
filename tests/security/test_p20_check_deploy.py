"""Property 20: ``manage.py check --deploy`` reports no issues with the production settings,
run as ``make deploy-check`` runs it (the real command, a fresh interpreter, production env)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def production_env(**extra: str) -> dict[str, str]:
    """The environment of the Makefile's DEPLOY_CHECK_ENV: required variables only, no defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TWINPORTAL_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="twinportal.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
        REDIS_URL="redis://127.0.0.1:6379/0",
        DJANGO_ALLOWED_HOSTS="twinportal.example.org",
    )
    env.update(extra)
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_reports_no_issues_with_the_production_settings() -> None:
    result = check_deploy(production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_it_fails_when_a_production_safeguard_is_switched_off() -> None:
    """The check is not vacuous: without HSTS the same command reports security.W004."""
    result = check_deploy(production_env(DJANGO_HSTS_SECONDS="0"))
    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr


def test_production_refuses_to_start_without_its_secret_key() -> None:
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    result = check_deploy(env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
