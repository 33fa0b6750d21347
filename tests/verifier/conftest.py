"""Fixtures of the verifier tests: every chain test runs on the embedded EVM and on anvil.

The same pattern as ``tests/settlement/chain/conftest.py``: the anvil variant is marked
``slow``; without an anvil binary it skips, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from rollbook.settlement import Chain
from rollbook.settlement.anvil import Anvil, AnvilNotFoundError, find_anvil

BACKENDS = ["embedded", pytest.param("anvil", marks=pytest.mark.slow)]


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[Anvil]:
    """One anvil per test session (per xdist worker); each test deploys its own contracts."""
    try:
        binary = find_anvil()
    except AnvilNotFoundError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{error}\n(CI=true: the anvil backend is required, not skipped)")
        pytest.skip(str(error))
    with Anvil(binary) as node:
        yield node


@pytest.fixture(params=BACKENDS)
def chain(request: pytest.FixtureRequest) -> Chain:
    if request.param == "embedded":
        return Chain.embedded()
    node: Anvil = request.getfixturevalue("anvil_node")
    return Chain.connect(node.url, dev_keys=node.dev_keys)


@pytest.fixture
def embedded_chain() -> Chain:
    return Chain.embedded()
