"""Run a local anvil node (Foundry's dev chain) as a child process, for tests and demos.

``Anvil`` finds the binary (``find_anvil``), starts it on a free loopback port, waits until it
answers JSON-RPC, exposes its ``url`` and funded ``dev_keys``, and stops it; it is a context
manager, so ``with Anvil() as node: Chain.connect(node.url, dev_keys=node.dev_keys)``.

Where the binary comes from, first match wins:

1. ``$ROLLBOOK_ANVIL`` (a path to the executable); if set, it must exist;
2. ``.tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`` under the repository (or
   the current directory): ``scripts/test.sh`` installs it there once with
   ``npm install --prefix .tools @foundry-rs/anvil-linux-amd64``;
3. ``anvil`` on ``PATH`` (a Foundry install).

Invariants:

- The node listens on 127.0.0.1 only, on a port the kernel picks (``--port 0``; the port is read
  back from anvil's "Listening on" line), so two nodes never race for a port and nothing
  outside the machine can reach it.
- Every wait is bounded: ``ANVIL_START_TIMEOUT_S`` to answer JSON-RPC, ``ANVIL_STOP_TIMEOUT_S``
  after SIGTERM before SIGKILL. A node that fails to start is stopped and its log quoted in the
  error.
- A started node is always stopped: by ``stop``/``__exit__``, else when the ``Anvil`` object is
  collected or the interpreter exits (``weakref.finalize``), so no test run leaves one behind.
- Dev keys are anvil's own (read from its ``--config-out`` file), not a copy of its well-known
  mnemonic: whatever anvil funds is what we sign with.

Limits: Linux x86-64 for the npm binary (other platforms bring their own via PATH or the
environment variable); the node's stdout goes to a log file in a temporary folder deleted on
stop.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
import weakref
from types import TracebackType
from typing import Any

import requests

__all__ = [
    "ANVIL_ENV",
    "ANVIL_NPM_BINARY",
    "ANVIL_NPM_PACKAGE",
    "ANVIL_START_TIMEOUT_S",
    "ANVIL_STOP_TIMEOUT_S",
    "Anvil",
    "AnvilError",
    "AnvilNotFoundError",
    "find_anvil",
]

ANVIL_ENV = "ROLLBOOK_ANVIL"
ANVIL_NPM_PACKAGE = "@foundry-rs/anvil-linux-amd64"
# where `npm install --prefix .tools <package>` puts the executable (the package's "bin")
ANVIL_NPM_BINARY = pathlib.Path(".tools/node_modules", ANVIL_NPM_PACKAGE, "bin/anvil")
ANVIL_START_TIMEOUT_S = 30.0  # it is up in well under a second; a cold disk can be slow
ANVIL_STOP_TIMEOUT_S = 5.0
ANVIL_POLL_S = 0.02
ANVIL_RPC_TIMEOUT_S = 2.0  # one readiness probe
ANVIL_LOG_TAIL_CHARS = 2_000  # how much of the log an error quotes
_LOOPBACK = "127.0.0.1"
_LISTENING = re.compile(r"Listening on (127\.0\.0\.1):(\d+)")
# src/rollbook/settlement/anvil.py -> the repository root of a source checkout
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]


class AnvilError(RuntimeError):
    """anvil could not be started or did not answer in time."""


class AnvilNotFoundError(AnvilError, FileNotFoundError):
    """No anvil binary where ``find_anvil`` looks."""


def find_anvil() -> pathlib.Path:
    """The anvil executable (see the module docstring for the search order)."""
    override = os.environ.get(ANVIL_ENV)
    if override:
        path = pathlib.Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise AnvilNotFoundError(f"${ANVIL_ENV}={override} is not an executable file")
        return path
    for root in (_REPO_ROOT, pathlib.Path.cwd()):
        candidate = root / ANVIL_NPM_BINARY
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return pathlib.Path(on_path)
    raise AnvilNotFoundError(
        f"anvil not found: set ${ANVIL_ENV}, run scripts/test.sh (it installs it with "
        f"`npm install --prefix .tools {ANVIL_NPM_PACKAGE}`), or put Foundry's anvil on PATH")


class Anvil:
    """One anvil process on a free loopback port; ``start``/``stop`` or ``with``."""

    def __init__(self, binary: pathlib.Path | None = None, *, accounts: int = 10,
                 extra_args: tuple[str, ...] = ()) -> None:
        self._binary = binary
        self._accounts = accounts
        self._extra_args = extra_args
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        # stops the process and deletes its folder, once: at stop(), or at the latest at exit
        self._finalizer: weakref.finalize[
            [subprocess.Popen[bytes], tempfile.TemporaryDirectory[str]], Anvil] | None = None
        self._url: str | None = None
        self._dev_keys: tuple[bytes, ...] = ()

    @property
    def url(self) -> str:
        if self._url is None:
            raise AnvilError("anvil is not running")
        return self._url

    @property
    def dev_keys(self) -> tuple[bytes, ...]:
        """The private keys of anvil's funded dev accounts."""
        return self._dev_keys

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Anvil:
        if self._process is not None:
            raise AnvilError("anvil already started")
        binary = self._binary or find_anvil()
        self._workdir = tempfile.TemporaryDirectory(prefix="rollbook-anvil-")
        workdir = pathlib.Path(self._workdir.name)
        log_path = workdir / "anvil.log"
        config_path = workdir / "config.json"
        command = [str(binary), "--host", _LOOPBACK, "--port", "0",
                   "--accounts", str(self._accounts), "--config-out", str(config_path),
                   *self._extra_args]
        with log_path.open("wb") as log:
            # the log is a file, not a pipe: anvil logs every request, and a pipe nobody
            # drains would fill up and stall it
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
        self._finalizer = weakref.finalize(self, _terminate, self._process, self._workdir)
        try:
            self._url = self._wait_until_ready(log_path, config_path)
            self._dev_keys = _read_keys(config_path)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate (then kill) the process and delete its folder; idempotent."""
        if self._finalizer is not None:
            self._finalizer()  # runs _terminate once, and never again at exit
        self._process = None
        self._workdir = None
        self._finalizer = None
        self._url = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _wait_until_ready(self, log_path: pathlib.Path, config_path: pathlib.Path) -> str:
        if self._process is None:
            raise AnvilError("anvil is not running")
        deadline = time.monotonic() + ANVIL_START_TIMEOUT_S
        url: str | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AnvilError(f"anvil exited with status {self._process.returncode}:\n"
                                 f"{_tail(log_path)}")
            if url is None:
                match = _LISTENING.search(log_path.read_text(errors="replace"))
                if match:
                    url = f"http://{match.group(1)}:{match.group(2)}"
            if url is not None and config_path.is_file() and _answers(url):
                return url
            time.sleep(ANVIL_POLL_S)
        raise AnvilError(f"anvil did not answer JSON-RPC within {ANVIL_START_TIMEOUT_S} s:\n"
                         f"{_tail(log_path)}")


def _answers(url: str) -> bool:
    request: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        response = requests.post(url, json=request, timeout=ANVIL_RPC_TIMEOUT_S)
        return response.ok and "result" in response.json()
    except (requests.RequestException, ValueError):
        return False


def _read_keys(config_path: pathlib.Path) -> tuple[bytes, ...]:
    try:
        document = json.loads(config_path.read_text())
        return tuple(bytes.fromhex(key.removeprefix("0x")) for key in document["private_keys"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise AnvilError(f"unreadable anvil config {config_path}: {error}") from error


def _tail(log_path: pathlib.Path) -> str:
    try:
        return log_path.read_text(errors="replace")[-ANVIL_LOG_TAIL_CHARS:]
    except OSError:
        return "(no log)"


def _terminate(process: subprocess.Popen[bytes],
               workdir: tempfile.TemporaryDirectory[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=ANVIL_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=ANVIL_STOP_TIMEOUT_S)
    workdir.cleanup()
