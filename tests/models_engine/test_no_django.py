"""The engine stays free of Django: importing all of it never pulls Django in."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import models_engine

ROOT = Path(__file__).resolve().parents[2]


def test_importing_every_engine_module_does_not_import_django():
    names = [m.name for m in pkgutil.walk_packages(models_engine.__path__, "models_engine.")]
    assert "models_engine.twin" in names and "models_engine.physiology.bp" in names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print('django' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "False"
