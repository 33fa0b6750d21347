"""The execution layer is the venue's specification: it must stay pure.

It may import nothing that does I/O, reads the clock or draws randomness, and nothing from the
layers around it (sequencer, commitment, settlement, feeds, bench, CLI). Checked statically on
every module's import statements, so a violation fails even if the import is never executed.
"""

from __future__ import annotations

import ast
import pathlib

import rollbook.execution

EXECUTION_ROOT = pathlib.Path(rollbook.execution.__file__).parent
FORBIDDEN_MODULES = {
    "asyncio", "datetime", "http", "io", "logging", "multiprocessing", "os", "pathlib",
    "random", "secrets", "select", "selectors", "shutil", "socket", "subprocess", "sys",
    "tempfile", "threading", "time", "urllib", "uuid",
}
ALLOWED_ROLLBOOK_PREFIX = "rollbook.execution"
# floats enter nowhere in the STF; numpy lives in rollbook.risk, outside it
FORBIDDEN_THIRD_PARTY = {"numpy", "scipy", "mpmath", "web3", "eth_account", "msgspec"}


def _imports(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_execution_modules_exist() -> None:
    assert len(list(EXECUTION_ROOT.rglob("*.py"))) >= 15


def test_execution_imports_no_io_and_no_outer_layer() -> None:
    violations = []
    for path in sorted(EXECUTION_ROOT.rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in FORBIDDEN_MODULES or top in FORBIDDEN_THIRD_PARTY:
                violations.append(f"{path.name}: imports {name}")
            if top == "rollbook" and not name.startswith(ALLOWED_ROLLBOOK_PREFIX):
                violations.append(f"{path.name}: imports outer layer {name}")
    assert violations == []


def test_no_float_literals_in_the_stf() -> None:
    offenders = []
    for path in sorted(EXECUTION_ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                offenders.append(f"{path.name}:{node.lineno} {node.value}")
    assert offenders == []
