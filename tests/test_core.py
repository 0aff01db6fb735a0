"""The kit core (``edgebird.core``): imports with only numpy present, parses Python 3.9, and its
one parser of labels / thresholds / species lists and one hash helper behave as the desktop
tools and the recorder always did."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgebird.core import files, labels

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "edgebird" / "core"
KIT_SOURCES = sorted(CORE.rglob("*.py")) + sorted((ROOT / "export").glob("*.py"))

#: run in a subprocess with -I -S: only the standard library, the copied package and numpy
ONLY_NUMPY = r"""
import importlib, importlib.abc, json, pkgutil, sys

class Only(importlib.abc.MetaPathFinder):
    '''Refuse every top-level package but the standard library, numpy and edgebird.'''
    refused = []

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in ("numpy", "edgebird") or top.startswith("_"):
            return None
        if top != "org":  # the standard library's own probe for Jython (pickle, copy)
            self.refused.append(name)
        raise ImportError(f"not in the kit: {name}")

sys.meta_path.insert(0, Only())
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import edgebird
assert edgebird.__file__.startswith(sys.argv[1]), edgebird.__file__
import edgebird.core
names = ["edgebird.core"] + [m.name for m in pkgutil.walk_packages(edgebird.core.__path__,
                                                                   "edgebird.core.")]
for name in names:
    importlib.import_module(name)
others = sorted({m.partition(".")[0] for m in sys.modules} - set(sys.stdlib_module_names)
                - {"numpy", "edgebird", "__main__"})
print(json.dumps([names, [o for o in others if not o.startswith("_")], Only.refused]))
"""


def test_core_imports_with_only_numpy(tmp_path):
    """Every module of edgebird.core (writers too), from a copy holding nothing but the
    package marker and the core, in an interpreter that sees the standard library and numpy
    only (no site-packages, no editable install, everything else refused)."""
    pkg = tmp_path / "kit" / "edgebird"
    pkg.mkdir(parents=True)
    shutil.copy2(ROOT / "edgebird" / "__init__.py", pkg / "__init__.py")
    shutil.copytree(CORE, pkg / "core", ignore=shutil.ignore_patterns("__pycache__"))
    numpy_home = tmp_path / "numpy_only"
    numpy_home.mkdir()
    (numpy_home / "numpy").symlink_to(Path(np.__file__).parent, target_is_directory=True)
    for libs in Path(np.__file__).parent.parent.glob("numpy.libs"):  # manylinux wheels
        (numpy_home / libs.name).symlink_to(libs, target_is_directory=True)
    run = subprocess.run([sys.executable, "-I", "-S", "-c", ONLY_NUMPY, str(pkg.parent),
                          str(numpy_home)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    names, others, refused = json.loads(run.stdout)
    assert "edgebird.core.writers.raven" in names and "edgebird.core.labels" in names
    assert others == [] and refused == [], run.stdout


@pytest.mark.parametrize("path", KIT_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_kit_sources_parse_as_python_39(path):
    """Raspberry Pi OS Bullseye ships Python 3.9: the kit's grammar must be 3.9's."""
    import ast

    source = path.read_text(encoding="utf-8")
    ast.parse(source, filename=str(path), feature_version=(3, 9))
    if "|" in source or "list[" in source or "dict[" in source:
        assert "from __future__ import annotations" in source or path.name == "__init__.py"


def test_read_labels_drops_bom_spaces_and_blank_lines(tmp_path):
    p = tmp_path / "X_Labels.txt"
    p.write_bytes("\ufeffA_a \n\n  B_b\r\nC_c\n\n".encode())
    assert labels.read_labels(p) == ["A_a", "B_b", "C_c"]


def test_read_thresholds_checks_columns_and_range(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("Class,Threshold\nA_a,0.40\nB_b,1\n")
    assert labels.read_thresholds(good) == {"A_a": 0.4, "B_b": 1.0}
    for name, text, message in [
            ("range.csv", "Class,Threshold\nA_a,1.5\nB_b,-0.1\n",
             r"thresholds must be in \[0, 1\] \(classes A_a, B_b\)"),
            ("nan.csv", "Class,Threshold\nA_a,nan\n", r"must be in \[0, 1\]"),
            ("columns.csv", "Label,Value\nA_a,0.5\n", "expected columns Class,Threshold"),
            ("number.csv", "Class,Threshold\nA_a,high\n", "not a thresholds file"),
            ("short.csv", "Class,Threshold\nA_a\n", "not a thresholds file")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=message):
            labels.read_thresholds(tmp_path / name)


def test_species_list_round_trip(tmp_path):
    p = tmp_path / "species_list.txt"
    p.write_bytes("\ufeff# made by hand\nA_a\n\n  # indented comment\n B_b \n".encode())
    assert labels.read_species_list(p) == ["A_a", "B_b"]
    out = labels.write_labels(tmp_path / "out.txt", ["A_a", "B_b"], comment="near home")
    assert out.read_bytes() == b"# near home\nA_a\nB_b\n"
    assert labels.read_species_list(out) == ["A_a", "B_b"]
    assert labels.write_labels(out, ["C_c"]).read_bytes() == b"C_c\n"


def test_hashes_are_the_ones_reports_and_keys_use(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(os.urandom(3 << 20))
    data = p.read_bytes()
    assert files.hash_file(p, "sha256") == hashlib.sha256(data).hexdigest()
    assert files.hash_file(p) == hashlib.blake2b(data, digest_size=20).hexdigest()
    assert files.hash_text("a\nb", 12) == hashlib.sha256(b"a\nb").hexdigest()[:12]
    assert files.hash_text("x") == hashlib.sha256(b"x").hexdigest()


def test_cached_hash_remembers_by_path_size_and_mtime(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(b"one")
    memo = tmp_path / "cache" / "sha256-memo.json"
    first = files.cached_hash_file(p, "sha256", memo)
    assert first == hashlib.sha256(b"one").hexdigest()
    st = p.stat()
    assert json.loads(memo.read_text()) == {f"{p}|{st.st_size}|{st.st_mtime_ns}": first}
    p.write_bytes(b"two!")  # another size: hashed again, and the memo keeps one entry a file
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = files.cached_hash_file(p, "sha256", memo)
    assert second == hashlib.sha256(b"two!").hexdigest()
    assert list(json.loads(memo.read_text()).values()) == [second]
    files._cached_digest.cache_clear()  # another process: the memo answers
    st = p.stat()
    memo.write_text(json.dumps({f"{p}|{st.st_size}|{st.st_mtime_ns}": "remembered"}))
    assert files.cached_hash_file(p, "sha256", memo) == "remembered"
    assert files.cached_hash_file(p, "sha256") == second  # no memo: hashed
