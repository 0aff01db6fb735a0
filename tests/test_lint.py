"""ruff is part of the test command, so CI fails on lint errors too."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import ROOT


def test_ruff_is_clean():
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    r = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
