"""The matching-engine peer runner: the skip path, and a hand-checked replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollbook.bench.peers import (
    PEER_NAME,
    PEER_VERSION,
    find_peer_interpreter,
    run_matching_engine_peer,
)

# One market; prices in ticks, sizes in lots. Book after each op in the comments
# (asks / bids as price:[id(remaining), ...], oldest first).
HAND_STREAM: list[list[object]] = [
    ["L", 1, "S", 101, 2, "GTC"],  # asks 101:[1(2)]
    ["L", 2, "S", 101, 5, "GTC"],  # asks 101:[1(2), 2(5)]
    ["L", 3, "S", 103, 4, "GTC"],  # asks 101:[1(2), 2(5)] 103:[3(4)]
    # Time priority: the older order 1 fills completely, order 2 is untouched.
    # (With the wrong priority both 1 and 2 would still rest at the end.)
    ["L", 4, "B", 101, 2, "IOC"],  # fill #1: 2@101 vs 1. asks 101:[2(5)] 103:[3(4)]
    # IOC sweeps one level, stops at its limit, and its remainder (2) is cancelled.
    ["L", 5, "B", 102, 7, "IOC"],  # fill #2: 5@101 vs 2. asks 103:[3(4)], bids empty
    ["L", 6, "S", 105, 3, "GTC"],  # asks 103:[3(4)] 105:[6(3)]
    ["C", 3],  # asks 105:[6(3)]
    ["C", 1],  # order 1 already filled: no-op
    ["M", 6, 104, 6],  # cancel-replace: asks 104:[6(6)]
    ["M", 99, 100, 1],  # unknown order: no-op (nothing new rests)
    ["L", 7, "B", 98, 3, "GTC"],  # bids 98:[7(3)]
    ["L", 8, "B", 110, 10, "IOC"],  # fill #3: 6@104 vs 6; remainder 4 cancelled
    ["L", 9, "S", 98, 1, "GTC"],  # fill #4: 1@98 vs 7 (partial). bids 98:[7(2)]
    ["L", 10, "S", 100, 2, "GTC"],  # asks 100:[10(2)]
]
EXPECTED_FILLS = 4
EXPECTED_RESTING = 2  # order 7 (bid 98, 2 lots) and order 10 (ask 100, 2 lots)


@pytest.fixture(scope="session")
def peer_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One venv for the whole session: building it is the slow part."""
    return tmp_path_factory.mktemp("peer-matching-engine") / "venv"


def test_skipped_when_no_interpreter(tmp_path: Path) -> None:
    result = run_matching_engine_peer(
        HAND_STREAM, cache_dir=tmp_path / "venv", find_interpreter=lambda: None
    )
    assert result["name"] == PEER_NAME
    assert result["skipped"] is True
    assert isinstance(result["reason"], str)
    assert "no Python >= 3.12" in result["reason"]
    assert not (tmp_path / "venv").exists()


def test_skipped_when_interpreter_is_broken(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-python"
    result = run_matching_engine_peer(
        HAND_STREAM, cache_dir=tmp_path / "venv", find_interpreter=lambda: missing
    )
    assert result["skipped"] is True
    assert isinstance(result["reason"], str)
    assert "creating a venv" in result["reason"]


def test_refuses_to_clear_a_foreign_directory(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me", encoding="utf-8")
    result = run_matching_engine_peer(
        HAND_STREAM, cache_dir=tmp_path, find_interpreter=lambda: Path("/bin/false")
    )
    assert result["skipped"] is True
    assert "not a venv" in str(result["reason"])
    assert precious.read_text(encoding="utf-8") == "keep me"


@pytest.fixture(scope="session")
def peer_python() -> Path:
    python = find_peer_interpreter()
    if python is None:
        pytest.skip("no Python >= 3.12 interpreter on this machine for the peer")
    return python


@pytest.mark.slow
def test_hand_stream_outcome_on_the_peer(peer_python: Path, peer_cache_dir: Path) -> None:
    result = run_matching_engine_peer(
        HAND_STREAM, cache_dir=peer_cache_dir, find_interpreter=lambda: peer_python
    )
    if result.get("skipped"):
        pytest.fail(f"peer skipped although {peer_python} exists: {result['reason']}")
    assert result["name"] == PEER_NAME
    assert result["version"] == PEER_VERSION
    assert result["ops"] == len(HAND_STREAM)
    assert result["fills"] == EXPECTED_FILLS
    assert result["resting_orders_end"] == EXPECTED_RESTING
    assert isinstance(result["orders_per_s"], float)
    assert result["orders_per_s"] > 0


@pytest.mark.slow
def test_replay_timeout_is_a_skip(peer_python: Path, peer_cache_dir: Path) -> None:
    result = run_matching_engine_peer(
        HAND_STREAM,
        cache_dir=peer_cache_dir,
        timeout_s=0.001,
        find_interpreter=lambda: peer_python,
    )
    assert result["skipped"] is True
    assert "timed out" in str(result["reason"])
