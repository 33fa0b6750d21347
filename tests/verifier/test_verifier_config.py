"""The verifier's configuration, its snapshot files, and the venue it must share with the node."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from verifier_helpers import ORACLE_ADDRESS, TestOperator, venue_config

from rollbook.execution.config import perpetual_market
from rollbook.settlement import Chain
from rollbook.verifier import (
    Verifier,
    VerifierConfig,
    VerifierConfigError,
    VerifierError,
    load_settings,
)
from rollbook.verifier.config import venue_fingerprint
from rollbook.verifier.snapshot import (
    SNAPSHOT_MAGIC,
    SnapshotHeader,
    VerifierSnapshotError,
    list_snapshots,
    read_snapshot,
    write_snapshot,
)

CONTRACT = "0x5e771e0000000000000000000000000000c0ffee"
KEY = "0x" + "11" * 32


def _node_toml(path: Path) -> Path:
    path.write_text(f'[oracle]\nsigners = ["0x{ORACLE_ADDRESS.hex()}"]\nthreshold = 1\n')
    return path


def test_settings_from_toml_and_flags(tmp_path: Path) -> None:
    _node_toml(tmp_path / "node.toml")
    file = tmp_path / "verifier.toml"
    file.write_text(f'[verifier]\nrpc_url = "http://127.0.0.1:8545"\n'
                    f'settlement_address = "{CONTRACT}"\nnode_config = "node.toml"\n'
                    f'confirmations = 3\nsnapshot_dir = "data"\n')
    settings = load_settings(file, {"confirmations": 5, "challenger_key": KEY,
                                    "start_block": None})
    assert settings.confirmations == 5 and settings.start_block == 0
    assert settings.settlement_address == bytes.fromhex(CONTRACT[2:])
    assert settings.node_config == (tmp_path / "node.toml").resolve()
    assert settings.snapshot_dir == (tmp_path / "data").resolve()
    assert settings.challenger_key == bytes.fromhex(KEY[2:])
    # the venue is the node's, read by the node's own config module
    config = settings.config(31337)
    assert config.venue == venue_config(31337)
    assert venue_fingerprint(config.venue) == venue_fingerprint(venue_config(31337))


@pytest.mark.parametrize(("text", "message"), [
    ('[verifier]\nrpc_url = "x"\n', "settlement_address"),
    (f'[verifier]\nrpc_url = "x"\nsettlement_address = "{CONTRACT}"\nconfirmation = 1\n',
     "unknown key"),
    (f'[verifier]\nrpc_url = "x"\nsettlement_address = "{CONTRACT}"\nconfirmations = "1"\n',
     "confirmations"),
    (f'[verifier]\nrpc_url = "x"\nsettlement_address = "{CONTRACT}"\n'
     f'challenger_key = "0x{"00" * 32}"\n', "challenger_key"),
    ('[verifier]\nrpc_url = "x"\nsettlement_address = "0x1234"\n', "settlement_address"),
    ('[node]\n', "unknown table"),
])
def test_settings_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "verifier.toml"
    file.write_text(text)
    with pytest.raises(VerifierConfigError, match=message) as raised:
        load_settings(file)
    assert "00" * 32 not in str(raised.value)  # a key never appears in a message


def test_config_limits() -> None:
    venue = venue_config(31337)
    with pytest.raises(VerifierConfigError, match="recovery_threads"):
        VerifierConfig(venue, recovery_threads=0)
    with pytest.raises(VerifierConfigError, match="recovery_processes"):
        VerifierConfig(venue, recovery_processes=-1)
    with pytest.raises(VerifierConfigError, match="recovery_processes"):
        VerifierConfig(venue, recovery_processes=17)
    assert VerifierConfig(venue, recovery_processes=0).recovery_processes == 0
    with pytest.raises(VerifierConfigError, match="confirmations"):
        VerifierConfig(venue, confirmations=-1)
    assert VerifierConfig(venue).challenger_key is None


def test_another_venue_or_chain_is_refused(embedded_chain: Chain) -> None:
    operator = TestOperator(embedded_chain)
    other_market = replace(operator.venue, markets=(perpetual_market(
        1, "BTC-PERP", 1, tick_size_quantums=100_000, lot_size_nanounits=1_000_000),))
    with pytest.raises(VerifierError, match="genesis root"):
        Verifier(embedded_chain, operator.settlement.address, VerifierConfig(other_market))
    with pytest.raises(VerifierError, match="chain"):
        Verifier(embedded_chain, operator.settlement.address,
                 VerifierConfig(venue_config(1)))


def test_snapshot_files_are_framed_and_checked(tmp_path: Path) -> None:
    header = SnapshotHeader(31337, bytes(20), bytes(32), bytes(32), 7, b"\x01" * 32, 123, 4,
                            {"deposits": [], "forced": []}, {"batches_verified": 7})
    path = write_snapshot(tmp_path, header, b"replica bytes")
    assert read_snapshot(path) == (header, b"replica bytes")
    assert [index for index, _ in list_snapshots(tmp_path)] == [7]
    for index in (8, 9, 10):
        write_snapshot(tmp_path, replace(header, batch_index=index), b"r")
    assert [index for index, _ in list_snapshots(tmp_path)] == [10, 9]  # two kept
    newest = tmp_path / "verifier-00000000000000000010.rvs"
    raw = newest.read_bytes()
    for damaged, message in ((raw[:20], "shorter"), (b"RBSNAP" + raw[6:], "not a verifier"),
                             (raw[:-1] + bytes([raw[-1] ^ 1]), "checksum"),
                             (raw + b"x", "length")):
        newest.write_bytes(damaged)
        with pytest.raises(VerifierSnapshotError, match=message):
            read_snapshot(newest)
    assert raw.startswith(SNAPSHOT_MAGIC)
    renamed = tmp_path / "verifier-00000000000000000003.rvs"
    renamed.write_bytes(raw)
    with pytest.raises(VerifierSnapshotError, match="holds batch 10"):
        read_snapshot(renamed)
    (tmp_path / "verifier-00000000000000000011.rvs.tmp").write_bytes(b"torn")
    list_snapshots(tmp_path)
    assert not (tmp_path / "verifier-00000000000000000011.rvs.tmp").exists()
