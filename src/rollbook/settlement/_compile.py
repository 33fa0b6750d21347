"""Compile the settlement contracts (Vyper) on this machine, once per source version.

``compile_contract(name)`` compiles ``contracts/<name>.vy`` with the ``vyper`` package and
returns its ABI and deployment bytecode. Compiling takes from a tenth of a second (the token)
to seconds (the settlement contract), and the node, the benchmark and every test would pay it
again, so results are cached twice:

- in memory, per process, keyed by the cache key below;
- on disk, one JSON file per key under ``$XDG_CACHE_HOME/rollbook/vyper/`` (by default
  ``~/.cache/rollbook/vyper/``), written to a temporary file and renamed into place, so two
  processes compiling at once (pytest-xdist) never read a half-written file.

Invariants:

- The cache key is the SHA-256 of the vyper version, the contract's name and the name and
  bytes of every ``.vy``/``.vyi`` file in the contracts folder (a contract may import its
  siblings), so any edit or compiler upgrade misses the cache; a hit never returns stale code.
- The disk cache is an optimisation only: an unreadable, corrupt or unwritable cache entry is
  ignored (and rewritten when possible), never an error.
- Results are shared, not copied: ``CompiledContract`` is frozen and its ABI a tuple of
  read-only mappings (their nested lists are plain: callers must not mutate them), so the
  in-memory cache hands the same object to every caller.

Limits: contract sources up to ``CONTRACT_SOURCE_BYTES_MAX`` bytes; names are plain
identifiers (no paths). Thread-safe for the in-memory cache (one lock around compilation).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "CONTRACTS_DIR",
    "CONTRACT_SOURCE_BYTES_MAX",
    "CompiledContract",
    "cache_dir",
    "compile_contract",
]

CONTRACTS_DIR = pathlib.Path(__file__).parent / "contracts"
# a contract is a few hundred lines; this only bounds a stray file read into memory
CONTRACT_SOURCE_BYTES_MAX = 1 << 20
_CACHE_FORMAT_VERSION = 1  # bump when the cached JSON's layout changes
_SOURCE_SUFFIXES = (".vy", ".vyi")
_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_memory_cache: dict[str, CompiledContract] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class CompiledContract:
    """What deploying and calling a contract needs: its ABI and its deployment bytecode."""

    name: str
    abi: tuple[Mapping[str, Any], ...]
    bytecode: bytes  # init code: the constructor plus the runtime code it returns


def cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/rollbook/vyper`` (``~/.cache/rollbook/vyper`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(base) / "rollbook" / "vyper"


def compile_contract(name: str, contracts_dir: pathlib.Path = CONTRACTS_DIR) -> CompiledContract:
    """Compile ``<contracts_dir>/<name>.vy`` (or return the cached result of an identical one).

    Raises ``FileNotFoundError`` if the contract does not exist, ``ValueError`` for a bad name
    or an oversized source, and vyper's own exception (with its diagnostics) if it does not
    compile.
    """
    if not _NAME_PATTERN.fullmatch(name):
        raise ValueError(f"contract name {name!r} must be a plain identifier")
    path = contracts_dir / f"{name}.vy"
    if not path.is_file():
        raise FileNotFoundError(f"no contract {name!r}: {path} does not exist")
    key = _cache_key(name, contracts_dir)
    with _lock:
        cached = _memory_cache.get(key)
        if cached is None:
            cached = _load(key, name)
            if cached is None:
                cached = _compile(name, path, contracts_dir)
                _store(key, cached)
            _memory_cache[key] = cached
        return cached


def _cache_key(name: str, contracts_dir: pathlib.Path) -> str:
    import vyper

    digest = hashlib.sha256()
    digest.update(f"rollbook-vyper-cache/{_CACHE_FORMAT_VERSION}\0".encode())
    digest.update(f"{vyper.__version__}\0{name}\0".encode())
    for source in sorted(contracts_dir.iterdir()):
        if source.suffix in _SOURCE_SUFFIXES and source.is_file():
            data = _read_source(source)
            # name and length first: no two different folders hash the same byte stream
            digest.update(f"{source.name}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()


def _read_source(path: pathlib.Path) -> bytes:
    size = path.stat().st_size
    if size > CONTRACT_SOURCE_BYTES_MAX:
        raise ValueError(f"{path} is {size} bytes, over "
                         f"CONTRACT_SOURCE_BYTES_MAX={CONTRACT_SOURCE_BYTES_MAX}")
    return path.read_bytes()


def _compile(name: str, path: pathlib.Path, contracts_dir: pathlib.Path) -> CompiledContract:
    # imported here: vyper takes about a second to import, and only compilation needs it
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle

    source = _read_source(path).decode("utf-8")
    output = vyper.compile_code(
        source,
        contract_path=path.name,
        resolved_path=path,
        # sibling modules and interfaces (``import merkle``) resolve inside the folder only
        input_bundle=FilesystemInputBundle([contracts_dir]),
        output_formats=["abi", "bytecode"],
    )
    return _make(name, output["abi"], output["bytecode"])


def _make(name: str, abi: Any, bytecode_hex: Any) -> CompiledContract:
    if not isinstance(abi, list) or not all(isinstance(entry, dict) for entry in abi):
        raise ValueError(f"{name}: the ABI is not a list of objects")
    if not isinstance(bytecode_hex, str):
        raise ValueError(f"{name}: the bytecode is not a hex string")
    bytecode = bytes.fromhex(bytecode_hex.removeprefix("0x"))
    if not bytecode:
        raise ValueError(f"{name}: empty bytecode")
    return CompiledContract(
        name=name,
        abi=tuple(MappingProxyType(dict(entry)) for entry in abi),
        bytecode=bytecode,
    )


def _load(key: str, name: str) -> CompiledContract | None:
    path = cache_dir() / f"{key}.json"
    try:
        document = json.loads(path.read_text())
        return _make(name, document["abi"], document["bytecode"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or corrupt: compile again (and overwrite it)


def _store(key: str, compiled: CompiledContract) -> None:
    directory = cache_dir()
    document = {
        "name": compiled.name,
        "abi": [dict(entry) for entry in compiled.abi],
        "bytecode": "0x" + compiled.bytecode.hex(),
    }
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle)
            os.replace(temporary, directory / f"{key}.json")  # atomic: readers see all or none
        except BaseException:
            pathlib.Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # a read-only or full disk only costs a recompilation next time
