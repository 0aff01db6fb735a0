"""The package boundaries (pyproject.toml's ``[tool.importlinter]`` contracts), checked by
import-linter on the installed layout, and shown to fail on an offending import.

import-linter builds its graph by walking the ``edgebird/`` folder, but ``gui/`` and ``export/``
install as ``edgebird.gui`` and ``edgebird.export`` (setuptools ``package-dir``): walked in place,
an import of ``edgebird.gui`` would look like one of ``edgebird`` and go unseen. So the linter runs
on a staged copy of the installed layout: a folder ``edgebird/`` of symbolic links to the source
(``gui`` and ``export`` among them), built in a second. Run ``python tests/test_boundaries.py``
to see the report.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the source folders setuptools maps into the edgebird package (pyproject's package-dir)
MAPPED = {"gui": ROOT / "gui", "export": ROOT / "export"}
SKIP = {"__pycache__"}


def _link_tree(src: Path, dst: Path, extra: dict[str, str]) -> None:
    """``dst`` mirrors ``src`` with symbolic links; a folder holding one of ``extra``'s files
    (relative path -> text) is made real so the file can be added beside the linked ones."""
    dst.mkdir(parents=True, exist_ok=True)
    children = {p.name: p for p in src.iterdir() if p.name not in SKIP}
    if src == ROOT / "edgebird":
        children.update(MAPPED)
    for name, path in children.items():
        inner = {k.split("/", 1)[1]: v for k, v in extra.items()
                 if k.startswith(f"{name}/")}
        if path.is_dir() and inner:
            _link_tree(path, dst / name, inner)
        else:
            (dst / name).symlink_to(path, target_is_directory=path.is_dir())
    for rel, text in extra.items():
        if "/" not in rel:
            (dst / rel).write_text(text, encoding="utf-8")


def lint(stage: Path, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """import-linter over the installed layout staged in ``stage`` (plus ``extra`` files,
    paths relative to the ``edgebird`` package), with the repository's contracts."""
    _link_tree(ROOT / "edgebird", stage / "edgebird", extra or {})
    code = "import sys; from importlinter.cli import lint_imports_command; " \
           "sys.exit(lint_imports_command())"
    env = {**os.environ, "PYTHONPATH": str(stage), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", code, str(ROOT / "pyproject.toml"),
                           "--no-cache", "--no-logo"], cwd=stage, env=env,
                          capture_output=True, text=True, timeout=120)


def test_contracts_are_kept(tmp_path):
    pytest.importorskip("importlinter")
    run = lint(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " broken" in run.stdout and "0 broken" in run.stdout, run.stdout


def test_the_linter_sees_the_mapped_packages(tmp_path):
    """The staged graph has edgebird.gui and edgebird.export and the recorder's own imports."""
    pytest.importorskip("grimp")
    _link_tree(ROOT / "edgebird", tmp_path / "edgebird", {})
    code = ("import grimp; g = grimp.build_graph('edgebird', cache_dir=None); "
            "print(sorted(g.find_modules_directly_imported_by('edgebird.export.recorder'))); "
            "print(sorted(g.find_modules_directly_imported_by('edgebird.cli')))")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)}, check=True)
    recorder, cli = run.stdout.splitlines()
    assert "'edgebird.export.config'" in recorder and "'edgebird.core.scores'" in recorder
    assert "'edgebird.gui'" in cli


#: one offending module per contract: (path in the package, source)
OFFENDERS = {
    "kit core": ("core/_offender.py", "from edgebird.pipeline import store\nimport scipy\n"),
    "recorder": ("export/_offender.py", "from edgebird.pipeline import analyze\n"),
    "nothing in edgebird imports": ("pipeline/_offender.py", "import edgebird.gui.app\n"),
    "Dask": ("training/_offender.py", "import distributed\n"),
    "TensorFlow": ("pipeline/_offender2.py", "import tensorflow as tf\n"),
    "Gradio": ("training/_offender2.py", "import gradio\n"),
    "usearch": ("pipeline/_offender3.py", "import usearch\n"),
    "optuna": ("heads/_offender.py", "import optuna\n"),
}


def test_each_contract_reports_an_offending_import(tmp_path):
    pytest.importorskip("importlinter")
    run = lint(tmp_path, dict(OFFENDERS.values()))
    assert run.returncode != 0
    broken = [ln for ln in run.stdout.splitlines() if " BROKEN" in ln]
    for contract, (path, _) in OFFENDERS.items():
        assert any(ln.startswith(contract) for ln in broken), (contract, run.stdout)
        module = "edgebird." + path.removesuffix(".py").replace("/", ".")
        assert module in run.stdout, (module, run.stdout)
    assert f"0 kept, {len(OFFENDERS)} broken" in run.stdout, run.stdout


def test_recorder_importing_the_gui_is_caught(tmp_path):
    """An import of a mapped package from another mapped package is seen too."""
    pytest.importorskip("importlinter")
    run = lint(tmp_path, {"export/_offender.py": "from edgebird.gui import launch\n"})
    assert run.returncode != 0
    assert "edgebird.export._offender -> edgebird.gui" in run.stdout, run.stdout


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        result = lint(Path(tmp))
    print(result.stdout, result.stderr, sep="", end="")
    sys.exit(result.returncode)
