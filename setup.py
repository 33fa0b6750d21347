"""Build hook: the native extensions (everything else is in pyproject.toml).

``rollbook.commitment._native`` runs the Merkle tree's hashing loops in C on OpenSSL's SHA-256
(see ``src/rollbook/commitment/_native.c``). It is optional: where it cannot be built (no C
compiler, no libcrypto) the install still succeeds and ``rollbook.commitment.merkle`` runs its
pure-Python loops, which are the reference the native ones are tested against.

``ROLLBOOK_MYPYC=1`` also compiles ``rollbook.execution`` (the state transition function) with
mypyc: about 2x the orders/s, bit-identical state roots. Unset (the default) the build is pure
Python, exactly as without this hook, and needs no mypy. The compiled build needs mypy (which
ships mypyc) importable by this script: ``pip install '.[mypyc]'`` first, then
``ROLLBOOK_MYPYC=1 pip install --no-build-isolation --no-deps ...`` (scripts/test.sh and
scripts/run.sh do this), so that a default build never installs mypy.

The ``.py`` sources stay installed beside the compiled modules and remain the reference
(``ROLLBOOK_PURE=1`` imports them instead; see ``rollbook._pure``). After a successful compiled
build, ``execution/_compiled_manifest.json`` records the sha256 of every compiled source; at
import, ``rollbook`` compares it with the sources on disk and falls back to the interpreted
modules (with a warning) when they differ, so that an edited ``.py`` is never shadowed by stale
compiled code.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
PACKAGE_ROOT = ROOT / "src" / "rollbook"
COMPILED_PACKAGE = "rollbook.execution"
# invariants.py subclasses AssertionError (a base class mypyc cannot compile) and runs only in
# tests and checks, off the hot path. events.py holds the rarer events' NamedTuples, which the
# gateway turns into its wire schema from their annotations: compiled, mypyc erases the
# generic arguments there (``tuple[int, ...]`` reads back as ``tuple``). NamedTuples are plain
# Python classes in a compiled build anyway, so leaving the module interpreted costs nothing.
# (The receipt and the order path's events, whose annotations are plain ints and bytes, are
# native classes in receipts.py, which is compiled.)
MYPYC_EXCLUDED = frozenset({"execution/invariants.py", "execution/events.py"})
# the verifier's and the sequencer's per-transaction work around the STF: decoding batch data,
# the EIP-712 digest, admission (nonces, agents), the caller's side of signer recovery in
# worker processes (struct words in, signers out), and the state root's per-record work (leaf
# encodings, what changed, slot assignment), and the node's recovery dispatcher's per-action
# loops (node/recovery.py: the GIL it holds is the node's scarcest resource under load). Not
# commitment/state_tree.py itself: the gateway's
# wire schema reads LeafProof's annotations, which a compiled build erases (as for events.py
# above), and snapshots pickle its StateCommitment.
MYPYC_EXTRA = ("sequencer/batch_data.py", "sequencer/signatures.py", "sequencer/eip712.py",
               "sequencer/admission.py", "sequencer/recovery_processes.py",
               "commitment/leaves.py", "commitment/changes.py", "node/recovery.py")
MANIFEST_NAME = "_compiled_manifest.json"  # read by rollbook._pure; git-ignored

# relative source path ("execution/stf.py") -> sha256 of the bytes mypyc compiled
_compiled_hashes: dict[str, str] = {}


def _mypyc_requested() -> bool:
    return os.environ.get("ROLLBOOK_MYPYC", "") not in ("", "0")


def _mypyc_extensions() -> list[Extension]:
    if not _mypyc_requested():
        return []
    from mypyc.build import mypycify  # only here: a default build must not need mypy

    sources: list[str] = []
    paths = [*sorted((PACKAGE_ROOT / "execution").rglob("*.py")),
             *(PACKAGE_ROOT / relative for relative in MYPYC_EXTRA)]
    for path in paths:
        relative = path.relative_to(PACKAGE_ROOT).as_posix()
        if relative in MYPYC_EXCLUDED:
            continue
        # hashed now, when mypyc reads them: an edit during the C compile makes the build stale
        _compiled_hashes[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        sources.append(path.relative_to(ROOT).as_posix())
    extensions: list[Extension] = mypycify(sources, opt_level="3")
    return extensions


class BuildExtWithManifest(build_ext):
    """``build_ext`` that writes the compiled-source manifest once every extension is built.

    Written after the build (never before), so a failed compile leaves no manifest claiming
    sources it did not compile; written beside the compiled modules, in the source tree for an
    editable (in-place) build and in the build directory otherwise (so wheels carry it).
    """

    def run(self) -> None:
        super().run()
        if not _compiled_hashes:
            return
        if self.inplace:
            package_dir = Path(self.get_finalized_command("build_py").get_package_dir(
                COMPILED_PACKAGE))
        else:
            package_dir = Path(self.build_lib, *COMPILED_PACKAGE.split("."))
        package_dir.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {"format": 1, "sources": _compiled_hashes}
        (package_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True)
                                                 + "\n")


setup(
    ext_modules=[
        Extension(
            "rollbook.commitment._native",
            sources=["src/rollbook/commitment/_native.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        *_mypyc_extensions(),
    ],
    cmdclass={"build_ext": BuildExtWithManifest},
)
