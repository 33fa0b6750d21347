"""``rollbook._pure``: the staleness guard of the compiled build and ``ROLLBOOK_PURE=1``.

The guard's logic is tested on a fake package tree in any build; the end-to-end tests (a copy of
the compiled tree with one source edited falls back to the interpreted modules, with a warning)
need the mypyc build and skip without it.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rollbook
from rollbook import _pure
from rollbook._pure import MANIFEST_NAME, is_compiled, stale_reason

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
PROBE = ("import warnings; warnings.simplefilter('default')\n"
         "from rollbook._pure import is_compiled; print(is_compiled())")


def _fake_tree(root: Path, sources: dict[str, bytes], compiled: list[str]) -> None:
    for name, text in sources.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text)
    for name in compiled:
        (root / name).with_suffix("").with_suffix(SUFFIX).write_bytes(b"")


def _write_manifest(root: Path, sources: dict[str, bytes]) -> None:
    digests = {name: hashlib.sha256(text).hexdigest() for name, text in sources.items()}
    (root / "execution" / MANIFEST_NAME).write_text(json.dumps({"format": 1, "sources": digests}))


SOURCES = {"execution/stf.py": b"x = 1\n", "execution/options/mmp.py": b"y = 2\n"}


def test_no_compiled_modules_is_never_stale(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tree(tmp_path, SOURCES, [])
    monkeypatch.setattr(_pure, "_PACKAGE_ROOT", tmp_path)
    assert stale_reason() is None


def test_a_matching_manifest_is_current(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tree(tmp_path, SOURCES, list(SOURCES))
    _write_manifest(tmp_path, SOURCES)
    monkeypatch.setattr(_pure, "_PACKAGE_ROOT", tmp_path)
    assert stale_reason() is None


@pytest.mark.parametrize("damage", ["edit", "delete", "no manifest", "bad manifest",
                                    "unrecorded module"])
def test_the_guard_sees_every_kind_of_staleness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                damage: str) -> None:
    _fake_tree(tmp_path, SOURCES, list(SOURCES))
    _write_manifest(tmp_path, SOURCES)
    manifest = tmp_path / "execution" / MANIFEST_NAME
    if damage == "edit":
        (tmp_path / "execution/options/mmp.py").write_bytes(b"y = 2  # edited\n")
    elif damage == "delete":
        (tmp_path / "execution/stf.py").unlink()
    elif damage == "no manifest":
        manifest.unlink()
    elif damage == "bad manifest":
        manifest.write_text("{")
    else:
        _fake_tree(tmp_path, {"execution/new.py": b""}, ["execution/new.py"])
    monkeypatch.setattr(_pure, "_PACKAGE_ROOT", tmp_path)
    assert stale_reason() is not None


def test_pure_env_runs_interpreted() -> None:
    env = {**os.environ, "ROLLBOOK_PURE": "1"}
    completed = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                               env=env, timeout=120, check=True)
    assert completed.stdout.strip() == "False"
    assert "stale" not in completed.stderr


def test_the_guard_costs_little() -> None:
    # it runs at every `import rollbook` (where compiled modules exist): hashing ~35 sources
    runs = 20
    best = min(_timed(stale_reason) for _ in range(runs))
    assert best < 0.05, f"stale_reason took {best * 1000:.1f} ms"


def _timed(function: object) -> float:
    import time

    assert callable(function)
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _copy_compiled_tree(tmp_path: Path) -> Path:
    """This (compiled) package and mypyc's shared library, copied to ``tmp_path/site``."""
    package = Path(rollbook.__file__).resolve().parent
    site = tmp_path / "site"
    shutil.copytree(package, site / "rollbook",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for shared in package.parent.glob(f"*__mypyc{SUFFIX}"):
        shutil.copy2(shared, site / shared.name)
    return site


def _probe(site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("ROLLBOOK_PURE", None)
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env=env, cwd=site, timeout=120, check=True)


@pytest.mark.skipif(not is_compiled(), reason="needs the mypyc-compiled build")
def test_an_edited_source_makes_the_compiled_build_fall_back(tmp_path: Path) -> None:
    site = _copy_compiled_tree(tmp_path)
    untouched = _probe(site)
    assert untouched.stdout.strip() == "True", untouched.stderr
    assert "stale" not in untouched.stderr

    source = site / "rollbook" / "execution" / "units.py"
    source.write_text(source.read_text() + "# an edit after the build\n")
    edited = _probe(site)
    assert edited.stdout.strip() == "False"
    assert edited.stderr.count("StaleCompiledBuildWarning") == 1, edited.stderr
    assert "execution/units.py changed since the build" in edited.stderr
