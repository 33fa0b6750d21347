"""Node configuration: the local defaults, a full TOML file, and an error per kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollbook.execution.config import default_venue_config
from rollbook.node import DEMO_ORACLE_KEY, ConfigError, NodeConfig, load_config, parse_config
from rollbook.node.config import DEMO_PRICE_QUANTUMS, address_of_key

FULL = """
[node]
data_dir = "venue"
snapshot_interval_batches = 10
snapshots_kept = 3
snapshot_fork = false
wal_segment_bytes = 1048576
recovery_threads = 4
recovery_processes = 0
inflight_max = 5000

[batch]
interval_ms = 100
txs_max = 1000
bytes_max = 65536

[chain]
url = "http://127.0.0.1:8545"
confirmations = 2
operator_key = "0x%(operator)s"
challenge_window_s = 60
forced_deadline_s = 3600
escape_period_s = 7200
poll_interval_ms = 250

[oracle]
signers = ["0x%(oracle)s"]
threshold = 1
key = "0x%(oracle_key)s"
interval_ms = 500
refresh_ms = 5000
[oracle.prices]
1 = 100000000000
2 = 4000000000

[heartbeat]
funding_interval_ms = 5000
liquidations_interval_ms = 500

[fees]
maker_fee_ppm = -50
taker_fee_ppm = 400

[venue]
open_orders_per_subaccount_max = 200
batch_cost_max = 2000000

[[markets]]
id = 1
symbol = "BTC-PERP"
index_id = 1
tick_size_quantums = 100000
lot_size_nanounits = 100000

[[markets]]
id = 2
symbol = "ETH-PERP"
index_id = 2
tick_size_quantums = 10000
lot_size_nanounits = 1000000
initial_ppm = 50000
maintenance_ppm = 30000
taker_fee_ppm = 300
"""


def _full_text() -> str:
    return FULL % {"operator": "11" * 32, "oracle": address_of_key(DEMO_ORACLE_KEY).hex(),
                   "oracle_key": DEMO_ORACLE_KEY.hex()}


def test_defaults_are_the_local_venue() -> None:
    config = load_config(None)
    assert config.chain.kind == "embedded" and config.storage.data_dir is None
    venue = config.venue_config(31337)
    assert venue.markets == default_venue_config(venue.oracle_signers).markets
    assert venue.oracle_signers == (address_of_key(DEMO_ORACLE_KEY),)
    assert config.oracle.prices == ((1, DEMO_PRICE_QUANTUMS),)
    assert parse_config("") == config


def test_full_file(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(_full_text())
    config = load_config(path)
    assert config.storage.data_dir == tmp_path / "venue"  # relative to the file
    assert config.storage.snapshot_interval_batches == 10
    assert not config.storage.snapshot_fork
    assert (config.storage.recovery_processes, config.storage.recovery_threads) == (0, 4)
    assert config.batch.interval_ms == 100 and config.batch.bytes_max == 65_536
    assert config.chain.kind == "rpc" and config.chain.confirmations == 2
    assert config.chain.operator_key == bytes.fromhex("11" * 32)
    assert dict(config.oracle.prices) == {1: 100_000 * 10**6, 2: 4_000 * 10**6}
    btc, eth = config.markets
    assert (btc.maker_fee_ppm, btc.taker_fee_ppm) == (-50, 400)
    assert (eth.maker_fee_ppm, eth.taker_fee_ppm) == (-50, 300)
    assert eth.margin_tiers[0].initial_ppm == 50_000
    venue = config.venue_config(10)
    assert venue.open_orders_per_subaccount_max == 200 and venue.batch_cost_max == 2_000_000


@pytest.mark.parametrize(("text", "message"), [
    ("[node]\nunknown = 1", "node.unknown: unknown key"),
    ("surprise = 1", "surprise: unknown key"),
    ("[batch]\ninterval_ms = '200'", "batch.interval_ms: must be an integer"),
    ("[batch]\ninterval_ms = 2.5", "batch.interval_ms: must be an integer"),
    ("[batch]\ntxs_max = true", "batch.txs_max: must be an integer"),
    ("[node]\nrecovery_processes = 17",
     r"node.recovery_processes: must be an integer in \[0, 16\]"),
    ("[batch]\ninterval_ms = 0", r"batch.interval_ms: must be an integer in \[1, 60000\]"),
    ("[batch]\nbytes_max = 100", "batch.bytes_max"),
    ("[chain]\nurl = 'ftp://x'", "chain.url"),
    ("[chain]\nurl = 'http://x:1'", "chain.operator_key: required"),
    ("[chain]\noperator_key = '0x12'", "chain.operator_key: must be 32 bytes"),
    ("[chain]\noperator_key = '" + "zz" * 32 + "'", "chain.operator_key: not hex"),
    ("[chain]\noperator_key = '0x" + "00" * 32 + "'", "not a valid secp256k1 private key"),
    ("[chain]\nchain_id = 5", "chain.chain_id: only for url = 'none'"),
    ("[chain]\nconfirmations = -1", "chain.confirmations"),
    ("[oracle]\nthreshold = 2", "oracle.threshold: 2 exceeds the 1 signers"),
    ("[oracle]\nsigners = []", "oracle.signers: must be a list of 1 to 32"),
    ("[oracle]\nsigners = ['0x" + "11" * 20 + "']\nkey = '0x" + "22" * 32 + "'",
     "oracle.key: its address is not among oracle.signers"),
    ("[oracle.prices]\nbtc = 5", "oracle.prices.btc: keys are index ids"),
    ("[oracle.prices]\n7 = 5", "oracle.prices.7: no market uses index 7"),
    ("[oracle.prices]\n1 = 0", "oracle.prices.1"),
    ("markets = []", "markets: must be a non-empty array"),
    ("[[markets]]\nsymbol = 'X'", "markets\\[0\\].id: required"),
    ("[[markets]]\nid = 1\ncolour = 'red'", "markets\\[0\\].colour: unknown key"),
    ("[[markets]]\nid = 1\n[[markets]]\nid = 1", "duplicate market id"),
    ("[[markets]]\nid = 1\ntick_size_quantums = 3\nlot_size_nanounits = 7",
     "one lot at one tick must be whole quantums"),
    ("[[markets]]\nid = 1\ninitial_ppm = 10000\nmaintenance_ppm = 50000", "markets/venue"),
    ("[venue]\nbatch_cost_max = 10", "a batch must be able to carry"),
    ("[venue]\nopen_orders_per_subaccount_max = 1000000",
     "below the worst-case cost of one CancelAll"),
    ("[fees]\ntaker_fee_ppm = -1", "fees.taker_fee_ppm"),
    ("[node]\nsnapshot_interval_batches = 0", "node.snapshot_interval_batches"),
    ("[node]\nsnapshot_fork = 1", "node.snapshot_fork: must be true or false"),
    ("not toml [", "not valid TOML"),
])
def test_every_mistake_names_its_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_batches_fit_the_settlement_contract() -> None:
    with pytest.raises(ConfigError, match="at most 65536 with a chain"):
        parse_config("[batch]\nbytes_max = 70000")
    assert parse_config("[batch]\nbytes_max = 70000\n[chain]\nurl = 'none'").batch.bytes_max \
        == 70_000


def test_none_chain_takes_a_chain_id() -> None:
    config = parse_config("[chain]\nurl = 'none'\nchain_id = 5")
    assert config.chain.kind == "none" and config.chain.chain_id == 5


def test_external_oracle_signers_need_no_key() -> None:
    signers = ", ".join(f"'0x{bytes([i]) .hex() * 20}'" for i in (1, 2, 3))
    config = parse_config(f"[oracle]\nsigners = [{signers}]\nthreshold = 2")
    assert config.oracle.key is None and config.oracle.threshold == 2
    assert len(config.venue_config(1).oracle_signers) == 3


def test_local_takes_a_data_dir(tmp_path: Path) -> None:
    assert NodeConfig.local(tmp_path).storage.data_dir == tmp_path


def test_challengers_are_read_and_bounded() -> None:
    first, second = "0x" + "11" * 20, "0x" + "22" * 20
    config = parse_config(f'[chain]\nchallengers = ["{first}", "{second}"]\n')
    assert config.chain.challengers == (bytes.fromhex("11" * 20), bytes.fromhex("22" * 20))
    with pytest.raises(ConfigError, match=r"chain.challengers\[0\]"):
        parse_config('[chain]\nchallengers = ["0x12"]\n')
    too_many = ", ".join(f'"0x{i:040x}"' for i in range(17))
    with pytest.raises(ConfigError, match="at most 16"):
        parse_config(f"[chain]\nchallengers = [{too_many}]\n")
