"""``rollbook verify`` against anvil, and ``rollbook bench verify``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from verifier_helpers import (
    BTC,
    CHALLENGER,
    ORACLE_ADDRESS,
    PRICE_QUANTUMS,
    PRICE_TICKS,
    USDC,
    TestOperator,
    address,
)

from rollbook.cli import main
from rollbook.execution import PlaceOrder, Side
from rollbook.settlement import Chain
from rollbook.settlement.anvil import Anvil
from rollbook.verifier.config import CHALLENGER_KEY_ENV


@pytest.mark.slow
def test_rollbook_verify_against_anvil(anvil_node: Anvil, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    chain = Chain.connect(anvil_node.url, dev_keys=anvil_node.dev_keys)
    challenger, maker = chain.dev_accounts[CHALLENGER], chain.dev_accounts[2]
    operator = TestOperator(chain, challengers=(challenger.address,))
    operator.fund(maker, 1_000_000 * USDC)
    operator.run(system=[operator.oracle(PRICE_QUANTUMS)])
    m = address(maker)
    operator.run([operator.sign(maker, PlaceOrder(m, 0, BTC, Side.SELL, PRICE_TICKS + 5, 100))])
    node_toml = tmp_path / "node.toml"
    node_toml.write_text(f'[oracle]\nsigners = ["0x{ORACLE_ADDRESS.hex()}"]\n')
    config = tmp_path / "verifier.toml"
    config.write_text(f'[verifier]\nrpc_url = "{anvil_node.url}"\n'
                      f'settlement_address = "{operator.settlement.address}"\n'
                      f'node_config = "node.toml"\nstart_block = {operator.start_block}\n')
    monkeypatch.delenv(CHALLENGER_KEY_ENV, raising=False)

    assert main(["verify", "--config", str(config), "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["batches_verified"] == report["roots_matched"] == 2
    assert report["disputes_sent"] == 0
    assert report["last_verified_root"] == "0x" + operator.commitment.root.hex()
    assert main(["verify", "--config", str(config), "--follow", "--duration", "0.3", "--json",
                 "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["roots_matched"] == 2

    # a wrong root: reported without a key (exit 1), disputed with one
    bad = operator.build([operator.sign(maker, PlaceOrder(m, 0, BTC, Side.SELL,
                                                          PRICE_TICKS + 6, 100))])
    operator.publish(bad, new_root=b"\x66" * 32)
    assert main(["verify", "--config", str(config), "--json", "--quiet"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["disputes_sent"] == 0 and report["halted_at"] == bad.index
    assert report["divergences"][0]["reason"] == "root_mismatch"
    assert operator.settlement.latest_batch() == bad.index
    monkeypatch.setenv(CHALLENGER_KEY_ENV, "0x" + bytes(challenger.key).hex())
    assert main(["verify", "--config", str(config), "--confirmations", "0"]) == 1
    human = capsys.readouterr()
    assert "DIVERGENCE batch 3: root_mismatch" in human.out and "[disputed]" in human.out
    assert "[rollbook]" in human.err  # progress on stderr
    assert operator.settlement.latest_batch() == bad.index - 1

    # a configuration that names no contract is refused with the key's name
    assert main(["verify", "--rpc-url", anvil_node.url, "--json"]) == 2
    assert "settlement_address" in capsys.readouterr().err


def test_rollbook_bench_verify(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "verify", "--json", "--quiet", "--transactions", "1200",
                 "--batch-entries", "400", "--repeats", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["transactions"] == 1200 and result["batches"] == 4
    assert result["txs_per_s"] > 0 and result["sig_limit_per_s"] > 0
    assert 0 < result["ratio_to_limit"] == pytest.approx(
        result["txs_per_s"] / result["sig_limit_per_s"], rel=0.01)
    assert result["prefetch_hits"] > 0 and result["prefetch_misses"] == 0
