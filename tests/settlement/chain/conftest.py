"""Fixtures for the chain adapter: every test runs on the embedded EVM (in process, and in a
child process as the node runs it: ``Chain.embedded_child``) and on anvil.

The anvil variant is marked ``slow``. Without an anvil binary it skips, except in CI
(``CI=true``), where a missing backend must not pass silently: there it fails, saying why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from rollbook.settlement import Chain
from rollbook.settlement.anvil import Anvil, AnvilNotFoundError, find_anvil

BACKENDS = ["embedded", "embedded_child", pytest.param("anvil", marks=pytest.mark.slow)]


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
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    if request.param == "embedded":
        yield Chain.embedded()
    elif request.param == "embedded_child":
        child = Chain.embedded_child()
        yield child
        child.close()
    else:
        node: Anvil = request.getfixturevalue("anvil_node")
        yield Chain.connect(node.url, dev_keys=node.dev_keys)
