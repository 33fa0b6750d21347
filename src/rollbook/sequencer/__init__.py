"""rollbook's sequencer building blocks: admission of signed actions and the write-ahead log.

Flow inside the sequencer: gateway limits (``limits``: payload sizes, rate limits; wall time,
not replayed) -> signer recovery (``signatures``: EIP-712 digest from ``eip712``, low-s,
coincurve, optionally on a thread pool) -> deterministic admission (``admission``: agent rights
and the per-signer nonce window, a function of the admitted actions and batch timestamps only,
which the verifier replays) -> total order and durability (``wal``: group-committed, checksummed
log; acknowledge only after ``commit`` returns).

The modules stay importable alone; this package re-exports the public surface. The sequencer
may import ``rollbook.execution`` (transaction types, their canonical encoding, keccak) and
nothing from the layers after it.
"""

from rollbook.sequencer.admission import (
    AGENT_PERMITTED_ACTIONS,
    AGENTS_PER_OWNER_MAX,
    NONCE_FUTURE_WINDOW_MS,
    NONCE_PAST_WINDOW_MS,
    NONCES_KEPT_PER_SIGNER,
    AdmissionState,
    AgentGrant,
)
from rollbook.sequencer.eip712 import (
    MASS_QUOTE_QUOTES_MAX,
    Eip712Domain,
    RegisterAgent,
    RevokeAgent,
    UserAction,
    signing_digest,
    typed_data,
)
from rollbook.sequencer.errors import AdmissionCode, AdmissionError
from rollbook.sequencer.limits import RateLimit, RateLimiter, action_cost_tokens
from rollbook.sequencer.signatures import (
    SignedTransaction,
    VerifiedTransaction,
    decode_signed_transaction,
    encode_signed_transaction,
    recover_signer,
    recover_signers,
    sign_action,
)
from rollbook.sequencer.wal import (
    RecoveryReport,
    WalCorruptError,
    WalError,
    WalFullError,
    WriteAheadLog,
)

__all__ = [
    "AGENTS_PER_OWNER_MAX",
    "AGENT_PERMITTED_ACTIONS",
    "MASS_QUOTE_QUOTES_MAX",
    "NONCES_KEPT_PER_SIGNER",
    "NONCE_FUTURE_WINDOW_MS",
    "NONCE_PAST_WINDOW_MS",
    "AdmissionCode",
    "AdmissionError",
    "AdmissionState",
    "AgentGrant",
    "Eip712Domain",
    "RateLimit",
    "RateLimiter",
    "RecoveryReport",
    "RegisterAgent",
    "RevokeAgent",
    "SignedTransaction",
    "UserAction",
    "VerifiedTransaction",
    "WalCorruptError",
    "WalError",
    "WalFullError",
    "WriteAheadLog",
    "action_cost_tokens",
    "decode_signed_transaction",
    "encode_signed_transaction",
    "recover_signer",
    "recover_signers",
    "sign_action",
    "signing_digest",
    "typed_data",
]
