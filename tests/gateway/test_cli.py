"""The CLI end to end, as a user runs it: ``rollbook node`` (start, serve, Ctrl-C),
``rollbook demo --json`` and a short ``rollbook bench node --json``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow

ROLLBOOK = [sys.executable, "-m", "rollbook.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_node_serves_until_ctrl_c() -> None:
    process = subprocess.Popen([*ROLLBOOK, "node", "--port", "0"], stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True, env=ENV)
    try:
        assert process.stderr is not None
        url = None
        deadline = time.monotonic() + 60
        lines = []
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            lines.append(line)
            match = re.search(r"API at (http://127\.0\.0\.1:\d+)", line)
            url = match.group(1) if match else None
        assert url is not None, lines
        with urllib.request.urlopen(url + "/v1/markets", timeout=10) as response:
            assert json.load(response)[0]["symbol"] == "BTC-PERP"
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=60)
        assert process.returncode == 0, rest
        assert "stopped cleanly" in rest
    finally:
        if process.poll() is None:
            process.kill()


def test_demo_json_reports_a_complete_venue_life() -> None:
    done = subprocess.run([*ROLLBOOK, "demo", "--json"], capture_output=True, text=True,
                          timeout=240, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    for key in ("deposits", "fills", "liquidations", "funding_payments",
                "withdrawals_claimed_onchain", "batches_finalized"):
        assert report[key] > 0, key
    assert re.fullmatch(r"0x[0-9a-f]{64}", report["final_root"])
    assert report["complete"] is True


def test_bench_node_runs_with_a_separate_load_generator() -> None:
    done = subprocess.run(
        [*ROLLBOOK, "bench", "node", "--json", "--duration", "1", "--rate", "200",
         "--fixed-duration", "1", "--actions", "2000"],
        capture_output=True, text=True, timeout=240, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["orders_per_s"] > 0 and result["cores"] >= 1
    assert 0 < result["ack_p50_ms"] <= result["ack_p99_ms"]
    assert result["fixed_rate_per_s"] == 200 and result["ack_p99_ms_at_fixed_rate"] > 0
    assert result["throughput"]["refused_at_door"] == 0
    assert "[loadgen]" in done.stderr  # the load came from the other process
    if sys.platform == "linux":  # the node's CPU per phase and per thread, read from /proc
        throughput = result["throughput"]
        assert throughput["node_cpu_s"] > 0 and throughput["node_cpu_us_per_action"] > 0
        assert "rollbook-sequencer" in throughput["node_cpu_s_by_thread"]
