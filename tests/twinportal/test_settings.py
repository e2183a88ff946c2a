"""Configuration: production settings fail loudly without their environment, and pass check --deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from twinportal import env

ROOT = Path(__file__).resolve().parents[2]


def run_check(extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_"))
    }
    environ.update({"DJANGO_SETTINGS_MODULE": "twinportal.settings.production", **extra_env})
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "x" * 10 + "K7#p!vQz2@Lm9$Rt4^Wn8&Yb1*Hc6(Jd3)Fg5-Sa0+Ue",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DJANGO_ALLOWED_HOSTS": "twinportal.example.org",
}


@pytest.mark.parametrize(
    "missing", ["DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOWED_HOSTS"]
)
def test_production_settings_refuse_to_start_without_each_required_variable(missing: str) -> None:
    result = run_check({k: v for k, v in PRODUCTION_ENV.items() if k != missing})
    assert result.returncode != 0
    assert missing in result.stderr


def test_production_settings_pass_the_deployment_checklist() -> None:
    result = run_check(PRODUCTION_ENV, "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_typed_helpers_reject_malformed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TP_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="TP_FLAG must be a boolean"):
        env.env_bool("TP_FLAG", False)
    monkeypatch.setenv("TP_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match="TP_NUMBER must be an integer"):
        env.env_int("TP_NUMBER", 1)
    monkeypatch.setenv("TP_LIST", "a, b,,c")
    assert env.env_list("TP_LIST") == ["a", "b", "c"]
