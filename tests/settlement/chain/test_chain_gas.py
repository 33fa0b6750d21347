"""The gas measurement for the commit benchmark: complete, plausible, and the same on both
backends up to the calldata of the dev accounts' addresses."""

from __future__ import annotations

import pytest

from rollbook.settlement import Chain
from rollbook.settlement.gas import SUBMIT_BATCH_BYTES, measure_settlement_gas

KEYS = {
    "deposit_gas", "submit_batch_gas_1kib", "submit_batch_gas_32kib", "submit_batch_gas_fixed",
    "submit_batch_gas_per_byte", "submit_batch_floor_gas_fixed",
    "submit_batch_floor_gas_per_byte", "claim_withdrawal_gas", "request_forced_withdrawal_gas",
    "freeze_gas", "escape_register_market_gas", "escape_register_account_gas",
    "escape_withdraw_account_gas",
}


def submit_gas(gas: dict[str, int | float], length: int) -> float:
    """A batch pays the larger of the execution price and the EIP-7623 calldata floor."""
    return max(gas["submit_batch_gas_fixed"] + gas["submit_batch_gas_per_byte"] * length,
               gas["submit_batch_floor_gas_fixed"]
               + gas["submit_batch_floor_gas_per_byte"] * length)


def test_gas_figures_are_complete_and_plausible(chain: Chain) -> None:
    gas = measure_settlement_gas(chain)
    assert set(gas) == KEYS
    assert all(isinstance(value, int) for key, value in gas.items() if "per_byte" not in key)
    assert 16 <= gas["submit_batch_gas_per_byte"] < 16.5  # calldata, plus a little copying
    assert 39 < gas["submit_batch_floor_gas_per_byte"] <= 40  # EIP-7623: 40 per non-zero byte
    for length, key in ((SUBMIT_BATCH_BYTES[0], "submit_batch_gas_1kib"),
                        (SUBMIT_BATCH_BYTES[-1], "submit_batch_gas_32kib")):
        assert submit_gas(gas, length) == pytest.approx(gas[key], abs=1)
    for key in KEYS - {"submit_batch_gas_per_byte", "submit_batch_floor_gas_per_byte"}:
        assert 21_000 < gas[key] < 2_000_000, key
    # a depth-32 proof is 1 KiB of calldata: at least 16 gas a byte for its non-zero bytes
    assert gas["claim_withdrawal_gas"] > 21_000 + 16 * 32 * 31
