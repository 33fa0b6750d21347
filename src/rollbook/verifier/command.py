"""``rollbook verify``: the verifier as a command (argument parsing stays in ``rollbook.cli``).

``run_verify(settings, follow=..., duration_s=...)`` connects to the JSON-RPC endpoint, builds
the venue from the node's configuration, replays the chain to its head (``confirmations``
deep) and, with ``follow``, keeps following it until interrupted or ``duration_s`` passes. It
returns the report as a JSON-ready dict and the exit status:

- 0: every batch the verifier processed is valid (nothing to dispute);
- 1: at least one divergence was found (the report says which, and whether it was disputed);
- 2: the configuration is refused (a message names the key);
- 3: the chain stayed unreachable, or holds something the verifier cannot follow.

Progress goes to ``say`` (stderr in the CLI) so that ``--json`` on stdout stays parseable.

``run_verify`` owns its process: it sets the garbage collector's policy
(``rollbook.runtime.tune_gc_for_throughput``) before replaying.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rollbook.runtime import tune_gc_for_throughput
from rollbook.settlement.chain import Chain, ChainError
from rollbook.verifier.config import VerifierConfigError, VerifierSettings
from rollbook.verifier.core import Verifier, VerifierError

__all__ = ["EXIT_CHAIN", "EXIT_CONFIG", "EXIT_DIVERGENCE", "EXIT_OK", "run_verify"]

EXIT_OK = 0
EXIT_DIVERGENCE = 1
EXIT_CONFIG = 2
EXIT_CHAIN = 3


def run_verify(settings: VerifierSettings, *, follow: bool = False,
               duration_s: float | None = None,
               say: Callable[[str], None] = lambda message: None) -> tuple[dict[str, Any], int]:
    """See the module docstring."""
    try:
        chain = Chain.connect(settings.rpc_url)
        config = settings.config(chain.chain_id)
        verifier = Verifier(chain, settings.settlement_address, config, progress=say)
    except VerifierConfigError as error:
        return {"error": str(error)}, EXIT_CONFIG
    except (ChainError, VerifierError) as error:
        return {"error": str(error)}, EXIT_CHAIN
    except Exception as error:  # web3 raises its own types for "no contract at that address"
        return {"error": f"cannot attach to the settlement contract: "
                         f"{type(error).__name__}: {error}"}, EXIT_CHAIN
    say(f"verifying settlement contract 0x{settings.settlement_address.hex()} on chain "
        f"{chain.chain_id} ({settings.rpc_url}), {config.confirmations} confirmations"
        + ("" if config.challenger_key else "; no challenger key: divergences are reported, "
           "not disputed"))
    deadline = None if duration_s is None else time.monotonic() + duration_s
    # a process of its own from here on: the replica (resumed from a snapshot, or genesis) is
    # frozen out of the cyclic collector's scans, which otherwise cost a third of decoding
    # (rollbook.runtime; bench verify measures with the same policy)
    tune_gc_for_throughput()
    try:
        with verifier:
            verifier.sync()
            if follow:
                say("following the chain (Ctrl-C stops)")
                verifier.run(lambda: deadline is not None and time.monotonic() >= deadline)
    except KeyboardInterrupt:
        say("interrupted: stopping")
    except (ChainError, VerifierError) as error:
        payload = verifier.report.as_dict()
        payload["error"] = str(error)
        return payload, EXIT_CHAIN
    payload = verifier.report.as_dict()
    payload["chain_id"] = chain.chain_id
    payload["settlement_address"] = "0x" + settings.settlement_address.hex()
    return payload, EXIT_DIVERGENCE if verifier.report.divergences else EXIT_OK
