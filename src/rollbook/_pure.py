"""Which build of ``rollbook.execution`` runs: mypyc-compiled, or the pure-Python reference.

``ROLLBOOK_MYPYC=1`` builds (see ``setup.py``) compile ``rollbook.execution`` (and the sequencer
and commitment modules of its ``MYPYC_EXTRA``) into extension modules that sit beside, and are
preferred by the import system over, the same ``.py`` files.
The interpreted sources stay the reference: the differential tests compare against them.

``ROLLBOOK_PURE=1`` puts ``PureSourceFinder`` first on ``sys.meta_path``: every ``rollbook.*``
module with a ``.py`` file loads from it, so the whole process runs interpreted. Modules with no
source (the C hashing loops of ``rollbook.commitment._native``) still load from their extension.

Staleness guard: an in-place build leaves extension modules in the source tree, where they keep
shadowing the ``.py`` files after these are edited. The build writes ``_compiled_manifest.json``
(the sha256 of every source it compiled); ``activate`` (run once by ``rollbook/__init__.py``,
before any other ``rollbook`` import) compares it with the sources on disk and, when compiled
modules exist but the manifest is missing or any hash differs, installs the same finder and
warns once. The check reads and hashes the ~40 compiled sources, a few milliseconds once per
process, and only where compiled modules exist.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = [
    "MANIFEST_NAME",
    "PURE_ENV",
    "PureSourceFinder",
    "StaleCompiledBuildWarning",
    "activate",
    "is_compiled",
    "stale_reason",
]

PURE_ENV = "ROLLBOOK_PURE"
MANIFEST_NAME = "_compiled_manifest.json"  # written by setup.py next to the compiled modules
# os.path, not pathlib: importing pathlib (re, enum, urllib) would triple `import rollbook`
_PACKAGE_ROOT = os.path.dirname(os.path.realpath(__file__))
# where ROLLBOOK_MYPYC=1 puts extensions (setup.py: rollbook.execution and MYPYC_EXTRA)
_COMPILED_DIRS = ("execution", "execution/options", "sequencer", "commitment", "node")
_SOURCE_ONLY = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)


class StaleCompiledBuildWarning(RuntimeWarning):
    """The compiled modules do not match the sources on disk; the sources run instead."""


class PureSourceFinder:
    """A meta-path finder that sees only ``.py`` files for ``rollbook``'s submodules.

    It returns ``None`` for anything else (and for a module with no ``.py``), so the regular
    finders handle those as usual.
    """

    def __init__(self) -> None:
        self._finders: dict[str, importlib.machinery.FileFinder] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("rollbook.") or path is None:
            return None
        for entry in path:
            finder = self._finders.get(entry)
            if finder is None:
                finder = self._finders[entry] = importlib.machinery.FileFinder(
                    entry, _SOURCE_ONLY)
            spec = finder.find_spec(fullname)
            if spec is not None:
                return spec
        return None


def _extension_modules() -> list[str]:
    """Relative paths (``execution/stf.py``) of the sources that have a compiled module here."""
    found: list[str] = []
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    for directory in _COMPILED_DIRS:
        try:
            names = os.listdir(os.path.join(_PACKAGE_ROOT, directory))
        except OSError:
            continue
        for name in names:
            for suffix in suffixes:
                # an extension with no .py beside it (the C hashing loops) has no source to
                # go stale against
                if name.endswith(suffix) and f"{name[: -len(suffix)]}.py" in names:
                    found.append(f"{directory}/{name[: -len(suffix)]}.py")
                    break
    return sorted(found)


def stale_reason() -> str | None:
    """Why the compiled modules cannot be trusted, or ``None`` (none present, or all current)."""
    compiled = _extension_modules()
    if not compiled:
        return None
    import hashlib  # here, not at module level: a pure install never pays for these imports
    import json

    manifest_path = os.path.join(_PACKAGE_ROOT, "execution", MANIFEST_NAME)
    try:
        with open(manifest_path, "rb") as manifest:
            recorded = json.loads(manifest.read())["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{manifest_path} is missing or unreadable"
    if not isinstance(recorded, dict):
        return f"{manifest_path} is malformed"
    unrecorded = [name for name in compiled if name not in recorded]
    if unrecorded:
        return f"compiled modules not in the manifest: {', '.join(unrecorded)}"
    for name, digest in sorted(recorded.items()):
        try:
            with open(os.path.join(_PACKAGE_ROOT, name), "rb") as source:
                current = hashlib.sha256(source.read()).hexdigest()
        except OSError:
            return f"{name} was removed since the build"
        if current != digest:
            return f"{name} changed since the build"
    return None


def _install_finder() -> None:
    if not any(isinstance(finder, PureSourceFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, PureSourceFinder())


def activate() -> None:
    """Choose the build for this process; must run before any ``rollbook`` submodule import."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        _install_finder()
        return
    reason = stale_reason()
    if reason is not None:
        import warnings

        _install_finder()
        warnings.warn(
            f"rollbook: the compiled build of rollbook.execution is stale ({reason}); running "
            "the pure-Python sources. Rebuild with ROLLBOOK_MYPYC=1 (see README) to compile.",
            StaleCompiledBuildWarning,
            stacklevel=2,
        )


def is_compiled() -> bool:
    """Whether this process runs the mypyc-compiled ``rollbook.execution`` (imports it)."""
    from rollbook.execution import stf

    return isinstance(getattr(stf, "__loader__", None), importlib.machinery.ExtensionFileLoader)
