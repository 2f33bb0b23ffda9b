"""load_shap() does not keep its caller's locals alive (shap stores import-error tracebacks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import gc, weakref

class Table:  # stands in for a feature table held by the function that first imports shap
    pass

def first_importer():
    table = Table()
    {how}
    return weakref.ref(table)

ref = first_importer()
gc.collect()
print("pinned" if ref() is not None else "freed")
"""


@pytest.mark.parametrize(("how", "expected"), [
    ("import shap", "pinned"),  # the mechanism: without the fix the caller's locals stay alive
    ("from explain.shap_import import load_shap; load_shap()", "freed"),
])
def test_first_shap_import_pins_the_caller_only_without_load_shap(how, expected):
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(how=how)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == expected, out.stderr[-2000:]
