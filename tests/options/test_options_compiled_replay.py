"""The options state machine's steps, generated on the pure build, replayed on the compiled one.

Why: the stateful machine (``test_options_stateful``) reaches MMP triggers, expiry settlement
and option liquidations, paths the seeded determinism streams touch less. Hypothesis does not
generate the same steps on the two builds (the derandomized runs differ, although each is
repeatable), so their coverage cannot be compared; this test compares behaviour instead. A
child process with ``ROLLBOOK_PURE=1`` runs the machine and records every step it applied
(the transaction, the clock advance, the receipt and the canonical root after it); this
process, compiled, starts the same machine and applies the same steps, and every receipt and
root must be equal. Transactions travel between the builds by pickle (``rollbook.execution.
pickling`` makes frozen dataclasses pickle by their fields in both builds).
"""

from __future__ import annotations

import enum
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rollbook._pure import PURE_ENV, is_compiled

TESTS_DIR = Path(__file__).resolve().parents[1]
EXAMPLES_MAX = 25  # machine runs recorded; each is up to STEPS_MAX steps after the setup
STEPS_MAX = 40
RECORD_TIMEOUT_S = 600


def _normalised(value: Any) -> Any:
    """Receipts compared by value: enums as ints (a compiled int field holds a plain int)."""
    if isinstance(value, enum.Enum):
        return int(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return (type(value).__name__, *(_normalised(item) for item in value))
    if isinstance(value, list | tuple):
        return tuple(_normalised(item) for item in value)
    return value


def _receipt(receipt: Any) -> tuple[Any, ...]:
    return int(receipt.code), receipt.message, _normalised(tuple(receipt.events))


def record(path: str) -> None:
    """Run the machine on this build and pickle every run's steps to ``path`` (child side)."""
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test
    from test_options_stateful import OptionsMachine

    from rollbook.commitment.state_tree import canonical_root

    assert os.environ.get(PURE_ENV) != "1" or not is_compiled(), "the recorder is not pure"
    runs: list[list[tuple[Any, ...]]] = []
    applied = OptionsMachine._apply

    def recording_apply(machine: Any, tx: Any, advance_ms: int = 1_000) -> Any:
        if not hasattr(machine, "recorded_steps"):
            machine.recorded_steps = []
            runs.append(machine.recorded_steps)
        receipt = applied(machine, tx, advance_ms)
        machine.recorded_steps.append((tx, advance_ms, _receipt(receipt),
                                       canonical_root(machine.state)))
        return receipt

    OptionsMachine._apply = recording_apply  # type: ignore[method-assign]
    run_state_machine_as_test(OptionsMachine, settings=settings(
        max_examples=EXAMPLES_MAX, stateful_step_count=STEPS_MAX, deadline=None,
        database=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]))
    with open(path, "wb") as file:
        pickle.dump(runs, file)


@pytest.mark.slow
@pytest.mark.skipif(not is_compiled(), reason="differential test of the mypyc-compiled build")
def test_compiled_build_replays_the_pure_machines_steps_exactly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import test_options_stateful
    from test_options_stateful import OptionsMachine

    from rollbook.commitment.state_tree import canonical_root

    recorded = tmp_path / "steps.pickle"
    child = (f"import sys; sys.path[:0] = [{str(TESTS_DIR)!r}, {str(TESTS_DIR / 'options')!r}]; "
             f"import test_options_compiled_replay as r; r.record({str(recorded)!r})")
    env = {**os.environ, PURE_ENV: "1"}
    subprocess.run([sys.executable, "-c", child], env=env, check=True,
                   timeout=RECORD_TIMEOUT_S, cwd=TESTS_DIR.parent)
    with open(recorded, "rb") as file:
        runs = pickle.load(file)
    monkeypatch.setattr(test_options_stateful, "event", lambda *args, **kwargs: None)
    steps_replayed = 0
    for run_index, steps in enumerate(runs):
        machine = OptionsMachine()  # its setup applies the first steps of every run again
        setup_steps = _setup_steps(machine)
        for step, (tx, advance_ms, expected, root) in enumerate(steps[setup_steps:],
                                                                 start=setup_steps):
            receipt = OptionsMachine._apply(machine, tx, advance_ms)
            assert _receipt(receipt) == expected, (
                f"run {run_index} step {step} ({type(tx).__name__}): receipts differ")
            assert canonical_root(machine.state) == root, (
                f"run {run_index} step {step} ({type(tx).__name__}): roots differ")
            steps_replayed += 1
    assert len(runs) >= EXAMPLES_MAX // 2 and steps_replayed > 100


def _setup_steps(machine: Any) -> int:
    """How many steps ``OptionsMachine.__init__`` applied (the oracle, listings, the smile)."""
    return int(machine.state.batch_index)
