"""Run peer matching engines on rollbook's benchmark stream, for comparison.

The peer is ``matching-engine`` from PyPI, a pure-Python price-time priority
engine. It requires Python >= 3.12 (it uses ``type`` statements and
``enum.StrEnum``), while rollbook supports and is benchmarked on 3.11, so the
peer cannot be imported into rollbook's process. Instead it runs in its own
virtual environment, built once from a >= 3.12 interpreter found on the machine
and cached, with a pinned version so that numbers are comparable between runs.
That also keeps the peer and its dependencies (msgspec, sortedcontainers) out
of rollbook's environment.

The peer process replays the same op stream (written to a temporary JSON file)
with ``_peer_matching_engine.py`` and prints one JSON result. Anything that
stops the comparison (no interpreter, no network for pip, a timeout, garbled
output) yields a "skipped" result with a reason instead of an exception: the
peer is a reference point, never a reason for ``rollbook bench`` to fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

PEER_NAME = "matching-engine"
PEER_VERSION = "0.1.1"
PEER_REQUIREMENT = f"{PEER_NAME}=={PEER_VERSION}"
MIN_PEER_PYTHON = (3, 12)

PROBE_TIMEOUT_S = 20.0  # running ``python -c`` once, to check an interpreter
VENV_CREATE_TIMEOUT_S = 180.0
PIP_INSTALL_TIMEOUT_S = 600.0
DEFAULT_RUN_TIMEOUT_S = 600.0
REASON_TAIL_CHARS = 600  # how much of a failing command's output goes into a reason

PEER_SCRIPT = Path(__file__).with_name("_peer_matching_engine.py")
READY_MARKER = "rollbook-peer-ready.txt"  # written last: its content is the pinned requirement
PATH_INTERPRETERS = ("python3.13", "python3.12")
PYENV_GLOB = "3.1[2-9]*/bin/python3"

InterpreterFinder = Callable[[], Path | None]

_VERSION_RE = re.compile(r"\((\d+), (\d+)\)")


class PeerUnavailableError(Exception):
    """The peer cannot be run here; the message is the reason reported as skipped."""


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "rollbook" / "peer-matching-engine-venv"


# -- finding an interpreter ------------------------------------------------------------


def probe_python_version(python: Path) -> tuple[int, int] | None:
    """``(major, minor)`` of an interpreter that actually runs, else ``None``."""
    cmd = [str(python), "-I", "-c", "import sys; print(sys.version_info[:2])"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION_RE.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def _pyenv_roots() -> list[Path]:
    roots = [Path.home() / ".pyenv", Path("/root/.pyenv")]
    env_root = os.environ.get("PYENV_ROOT")
    if env_root:
        roots.insert(0, Path(env_root))
    return roots


def _version_key(python: Path) -> tuple[int, ...]:
    """Sort key from a pyenv path ``.../versions/3.13.0/bin/python3``."""
    name = python.parent.parent.name
    return tuple(int(part) for part in re.findall(r"\d+", name))


def _pyenv_candidates(root: Path) -> list[Path]:
    try:
        found = list((root / "versions").glob(PYENV_GLOB))
    except OSError:
        return []
    return sorted(found, key=_version_key, reverse=True)


def candidate_interpreters() -> Iterator[Path]:
    """Places a >= 3.12 interpreter may be, most preferred first (unverified)."""
    if sys.version_info >= MIN_PEER_PYTHON:
        yield Path(sys.executable)
    for name in PATH_INTERPRETERS:
        found = shutil.which(name)
        if found:
            yield Path(found)
    for root in _pyenv_roots():
        yield from _pyenv_candidates(root)


def find_peer_interpreter() -> Path | None:
    """The first candidate that runs and reports a version >= 3.12."""
    seen: set[Path] = set()
    for python in candidate_interpreters():
        if python in seen:
            continue
        seen.add(python)
        version = probe_python_version(python)
        if version is not None and version >= MIN_PEER_PYTHON:
            return python
    return None


# -- the cached venv -------------------------------------------------------------------


def _tail(text: str) -> str:
    return " ".join(text.strip()[-REASON_TAIL_CHARS:].split())


def _run_step(cmd: Sequence[str], timeout_s: float, what: str) -> str:
    """Run one setup command; its stdout, or PeerUnavailableError saying what failed."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise PeerUnavailableError(f"{what} timed out after {timeout_s:.0f}s") from None
    except OSError as exc:
        raise PeerUnavailableError(f"{what} could not start: {exc}") from None
    if proc.returncode != 0:
        detail = _tail(proc.stderr or proc.stdout)
        raise PeerUnavailableError(f"{what} failed (exit {proc.returncode}): {detail}")
    return proc.stdout


def venv_python(venv_dir: Path) -> Path:
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def _venv_is_ready(venv_dir: Path) -> bool:
    marker = venv_dir / READY_MARKER
    try:
        pinned = marker.read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return pinned == PEER_REQUIREMENT and probe_python_version(venv_python(venv_dir)) is not None


def _check_safe_to_clear(venv_dir: Path) -> None:
    """Refuse to ``venv --clear`` a directory that is neither empty nor a venv."""
    if not venv_dir.exists():
        return
    if not venv_dir.is_dir():
        raise PeerUnavailableError(f"cache dir {venv_dir} exists and is not a directory")
    if any(venv_dir.iterdir()) and not (venv_dir / "pyvenv.cfg").is_file():
        raise PeerUnavailableError(f"cache dir {venv_dir} is not empty and not a venv")


def ensure_peer_venv(python: Path, venv_dir: Path) -> Path:
    """Build (once) the venv with the pinned peer; return its interpreter."""
    if _venv_is_ready(venv_dir):
        return venv_python(venv_dir)
    _check_safe_to_clear(venv_dir)
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    create = [str(python), "-I", "-m", "venv", "--clear", str(venv_dir)]
    _run_step(create, VENV_CREATE_TIMEOUT_S, f"creating a venv at {venv_dir} with {python}")
    peer_python = venv_python(venv_dir)
    install = [str(peer_python), "-I", "-m", "pip", "install", "--quiet"]
    install += ["--disable-pip-version-check", PEER_REQUIREMENT]
    _run_step(install, PIP_INSTALL_TIMEOUT_S, f"pip install {PEER_REQUIREMENT}")
    (venv_dir / READY_MARKER).write_text(PEER_REQUIREMENT + "\n", encoding="utf-8")
    return peer_python


# -- running the peer ------------------------------------------------------------------


def _parse_result(stdout: str) -> dict[str, object]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise PeerUnavailableError("peer printed nothing")
    try:
        result = json.loads(lines[-1])
    except ValueError:
        raise PeerUnavailableError(f"peer output is not JSON: {_tail(lines[-1])}") from None
    if not isinstance(result, dict) or not isinstance(result.get("orders_per_s"), int | float):
        raise PeerUnavailableError(f"peer output lacks orders_per_s: {_tail(lines[-1])}")
    return {str(key): value for key, value in result.items()}


def replay_on_peer(
    peer_python: Path, ops: list[list[object]], timeout_s: float
) -> dict[str, object]:
    """Write ``ops`` to a temporary JSON file and replay it in the peer's venv."""
    with tempfile.TemporaryDirectory(prefix="rollbook-peer-") as tmp:
        stream = Path(tmp) / "stream.json"
        try:
            stream.write_text(json.dumps(ops, separators=(",", ":")), encoding="utf-8")
        except (TypeError, ValueError) as exc:
            raise PeerUnavailableError(f"ops are not JSON-serialisable: {exc}") from None
        cmd = [str(peer_python), "-I", str(PEER_SCRIPT), str(stream)]
        stdout = _run_step(cmd, timeout_s, f"peer replay of {len(ops)} ops")
    return _parse_result(stdout)


def _skipped(reason: str) -> dict[str, object]:
    return {"name": PEER_NAME, "skipped": True, "reason": reason}


def run_matching_engine_peer(
    ops: list[list[object]],
    *,
    cache_dir: Path | None = None,
    timeout_s: float = DEFAULT_RUN_TIMEOUT_S,
    find_interpreter: InterpreterFinder = find_peer_interpreter,
) -> dict[str, object]:
    """Replay ``ops`` on the ``matching-engine`` peer; its result, or a skipped record.

    ``ops`` uses the stream format documented in ``_peer_matching_engine.py``.
    ``timeout_s`` bounds the replay itself; building the venv (first call only)
    has its own limits. Never raises: every failure becomes
    ``{"name": "matching-engine", "skipped": True, "reason": ...}``.
    """
    try:
        python = find_interpreter()
        if python is None:
            return _skipped(
                f"no Python >= {MIN_PEER_PYTHON[0]}.{MIN_PEER_PYTHON[1]} interpreter found "
                f"(tried the running one, {', '.join(PATH_INTERPRETERS)} on PATH, pyenv)"
            )
        venv_dir = (cache_dir or default_cache_dir()).expanduser()
        peer_python = ensure_peer_venv(python, venv_dir)
        return replay_on_peer(peer_python, ops, timeout_s)
    except PeerUnavailableError as exc:
        return _skipped(str(exc))
    except Exception as exc:  # a reference point must never break the benchmark
        return _skipped(f"unexpected error running the peer: {exc!r}")
