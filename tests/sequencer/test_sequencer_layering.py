"""The admission rules are replayed by the verifier, so their modules must stay pure.

``eip712``, ``signatures``, ``admission`` and ``errors`` may not import anything that reads a
clock, draws randomness or does I/O; the gateway-side ``limits`` (wall-clock rate limits) and
the ``wal`` (files) may. No sequencer module imports a layer after it (commitment,
settlement, feeds). Checked statically on the import statements.
"""

from __future__ import annotations

import ast
import pathlib

import rollbook.sequencer

SEQUENCER_ROOT = pathlib.Path(rollbook.sequencer.__file__).parent
DETERMINISTIC_MODULES = ("eip712.py", "signatures.py", "admission.py", "errors.py")
IMPURE = {"asyncio", "datetime", "fcntl", "io", "os", "pathlib", "random", "secrets", "select",
          "shutil", "socket", "subprocess", "tempfile", "threading", "time", "uuid"}
LATER_LAYERS = ("rollbook.commitment", "rollbook.settlement", "rollbook.feeds")


def _imports(path: pathlib.Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_admission_rules_import_nothing_impure() -> None:
    violations = [f"{name}: {module}" for name in DETERMINISTIC_MODULES
                  for module in _imports(SEQUENCER_ROOT / name)
                  if module.split(".")[0] in IMPURE]
    assert violations == []


def test_sequencer_imports_no_later_layer() -> None:
    violations = [f"{path.name}: {module}" for path in sorted(SEQUENCER_ROOT.glob("*.py"))
                  for module in _imports(path) if module.startswith(LATER_LAYERS)]
    assert violations == []
