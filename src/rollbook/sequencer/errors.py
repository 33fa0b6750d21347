"""Stable rejection codes of the sequencer's admission (signatures, nonces, agents, limits).

An action refused at the door never reaches a batch: the gateway answers the client with one of
these codes and its message, and nothing changes. The codes are part of the protocol the way
``rollbook.execution.errors`` codes are (client SDKs switch on them), so a code is never
renumbered or reused; new codes are appended. They live in their own range (100 and up) so that
an admission code can never be mistaken for an STF receipt code (0-99).

Two families, with a different standing towards the verifier:

- *deterministic* codes (everything but ``PAYLOAD_TOO_LARGE`` and ``RATE_LIMITED``) are a pure
  function of the signed action, the admission state and the batch timestamp; the verifier
  replays them and a published batch holding an action that would be refused is fraud;
- *gateway* codes depend on wall time or on the transport and are never replayed.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ADMISSION_MESSAGES", "GATEWAY_CODES", "AdmissionCode", "AdmissionError"]


class AdmissionCode(IntEnum):
    # --- encoding and fields ---
    MALFORMED_ENCODING = 100
    FIELD_OUT_OF_RANGE = 101
    UNSUPPORTED_ACTION = 102
    # --- signatures ---
    SIGNATURE_MALFORMED = 110
    SIGNATURE_BAD_V = 111
    SIGNATURE_HIGH_S = 112
    SIGNATURE_INVALID = 113
    # --- authorisation ---
    SIGNER_NOT_AUTHORISED = 120
    AGENT_NOT_PERMITTED = 121
    AGENT_EXPIRED = 122
    AGENT_SUBACCOUNT_NOT_PERMITTED = 123
    AGENT_REGISTRATION_INVALID = 124
    AGENTS_LIMIT = 125
    # --- nonces ---
    NONCE_USED = 130
    NONCE_BELOW_WINDOW = 131
    NONCE_TOO_OLD = 132
    NONCE_TOO_FAR_AHEAD = 133
    # --- gateway-side (wall time, transport): not replayed by the verifier ---
    PAYLOAD_TOO_LARGE = 140
    RATE_LIMITED = 141


ADMISSION_MESSAGES: dict[AdmissionCode, str] = {
    AdmissionCode.MALFORMED_ENCODING: "bytes are not a canonical signed transaction",
    AdmissionCode.FIELD_OUT_OF_RANGE: "a field is out of the range of its signed type",
    AdmissionCode.UNSUPPORTED_ACTION: "this transaction kind cannot be signed by a user",
    AdmissionCode.SIGNATURE_MALFORMED: "signature must be 65 bytes r || s || v",
    AdmissionCode.SIGNATURE_BAD_V: "signature v must be 27 or 28",
    AdmissionCode.SIGNATURE_HIGH_S: "signature s must be in the lower half of the curve order",
    AdmissionCode.SIGNATURE_INVALID: "signature r or s is out of range or recovers no key",
    AdmissionCode.SIGNER_NOT_AUTHORISED: (
        "the recovered signer is neither the owner nor a live agent of it (wrong key, wrong "
        "chain id or settlement contract in the domain, or altered fields)"),
    AdmissionCode.AGENT_NOT_PERMITTED: (
        "agent keys may trade but never withdraw, transfer or manage agents"),
    AdmissionCode.AGENT_EXPIRED: "the agent's registration has expired",
    AdmissionCode.AGENT_SUBACCOUNT_NOT_PERMITTED: (
        "the agent is registered for another subaccount of this owner"),
    AdmissionCode.AGENT_REGISTRATION_INVALID: (
        "agent must be a non-zero address other than the owner, expiring in the future and "
        "within the maximum agent lifetime"),
    AdmissionCode.AGENTS_LIMIT: "the owner already has the maximum number of live agents",
    AdmissionCode.NONCE_USED: "nonce was already used by this signer",
    AdmissionCode.NONCE_BELOW_WINDOW: (
        "nonce is not above the smallest of this signer's kept nonces"),
    AdmissionCode.NONCE_TOO_OLD: "nonce (a millisecond timestamp) is too far before batch time",
    AdmissionCode.NONCE_TOO_FAR_AHEAD: (
        "nonce (a millisecond timestamp) is too far after batch time"),
    AdmissionCode.PAYLOAD_TOO_LARGE: "payload exceeds its size limit",
    AdmissionCode.RATE_LIMITED: "account exceeded its request rate; retry later",
}

assert set(ADMISSION_MESSAGES) == set(AdmissionCode), "every admission code needs a message"

GATEWAY_CODES = frozenset({AdmissionCode.PAYLOAD_TOO_LARGE, AdmissionCode.RATE_LIMITED})


class AdmissionError(Exception):
    """An action refused before sequencing; ``code`` is stable, ``detail`` is for humans."""

    def __init__(self, code: AdmissionCode, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code.name}: {ADMISSION_MESSAGES[code]}"
                         + (f" ({detail})" if detail else ""))

    @property
    def message(self) -> str:
        base = ADMISSION_MESSAGES[self.code]
        return f"{base} ({self.detail})" if self.detail else base

    def __eq__(self, other: object) -> bool:
        # two refusals are the same refusal when code and detail agree (tests compare replays)
        if not isinstance(other, AdmissionError):
            return NotImplemented
        return (self.code, self.detail) == (other.code, other.detail)

    def __hash__(self) -> int:
        return hash((self.code, self.detail))

    def __reduce__(self) -> tuple[type[AdmissionError], tuple[AdmissionCode, str]]:
        # picklable with its code (a process pool may carry it back)
        return (AdmissionError, (self.code, self.detail))
