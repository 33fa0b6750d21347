"""The verifier: rebuilds the venue from the settlement chain alone and challenges wrong roots.

``Verifier(chain, settlement_address, VerifierConfig(venue=...))`` follows any chain (an
embedded one in-process, or any JSON-RPC endpoint), replays every published batch through the
node's own replay path (``rollbook.sequencer.batch_data.replay_batch``) from the genesis state,
checks data availability, signatures, nonces, L1 inputs, counters, forced-withdrawal deadlines
and roots (``checks``), and disputes an invalid batch inside its challenge window, reporting a
typed ``Divergence``. ``escape`` builds the escape hatch's proofs from the verifier's own state.
``rollbook verify`` is the command line; docs/trust-model.md says what it protects.
"""

from rollbook.verifier.calldata import CalldataError, SubmitBatchCall, decode_submit_batch
from rollbook.verifier.checks import (
    BatchOutcome,
    CheckRules,
    L1Book,
    L1Deposit,
    L1ForcedRequest,
    Submission,
    check_batch,
)
from rollbook.verifier.config import (
    VerifierConfig,
    VerifierConfigError,
    VerifierSettings,
    load_settings,
)
from rollbook.verifier.core import DisputeRecord, Verifier, VerifierError, VerifierReport
from rollbook.verifier.divergence import Divergence, DivergenceReason
from rollbook.verifier.escape import EscapeAccount, EscapeKit, build_escape_kit
from rollbook.verifier.pipeline import RecoveryPipeline
from rollbook.verifier.replica import Replica, ReplicaError
from rollbook.verifier.snapshot import VerifierSnapshotError

__all__ = [
    "BatchOutcome",
    "CalldataError",
    "CheckRules",
    "DisputeRecord",
    "Divergence",
    "DivergenceReason",
    "EscapeAccount",
    "EscapeKit",
    "L1Book",
    "L1Deposit",
    "L1ForcedRequest",
    "RecoveryPipeline",
    "Replica",
    "ReplicaError",
    "Submission",
    "SubmitBatchCall",
    "Verifier",
    "VerifierConfig",
    "VerifierConfigError",
    "VerifierError",
    "VerifierReport",
    "VerifierSettings",
    "VerifierSnapshotError",
    "build_escape_kit",
    "check_batch",
    "decode_submit_batch",
    "load_settings",
]
