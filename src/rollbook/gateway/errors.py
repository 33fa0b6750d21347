"""Every answer the API gives to a refused request: an HTTP status, a stable code, a message.

Three families of codes share one number space so that a client switches on ``code`` alone:

- ``0..99``: the STF's receipt codes (``rollbook.execution.errors.ErrorCode``): the action was
  sequenced (its nonce is used) and the state machine refused it;
- ``100..199``: admission codes (``rollbook.sequencer.errors.AdmissionCode``): refused at the
  door (signature, nonce window, agent rights, payload size, rate limit); nothing changed;
- ``200..299``: gateway codes (``GatewayCode`` below): the request never became an action
  (malformed JSON, wrong types, unknown fields, unknown routes or markets); nothing changed.

Codes are part of the protocol (SDKs switch on them): never renumbered or reused; new codes are
appended. ``status_of`` gives each code its HTTP status; a WebSocket error carries the same
``status`` field so that both transports answer alike.
"""

from __future__ import annotations

from enum import IntEnum

from rollbook.execution.errors import ERROR_MESSAGES, ErrorCode
from rollbook.sequencer.errors import ADMISSION_MESSAGES, AdmissionCode, AdmissionError

__all__ = [
    "GATEWAY_MESSAGES",
    "ApiError",
    "GatewayCode",
    "code_name",
    "status_of",
]


class GatewayCode(IntEnum):
    MALFORMED_JSON = 200
    WRONG_TYPE = 201
    UNKNOWN_FIELD = 202
    MISSING_FIELD = 203
    INVALID_VALUE = 204
    NOT_FOUND = 205
    METHOD_NOT_ALLOWED = 206
    UNKNOWN_MARKET = 207
    UNKNOWN_ACCOUNT = 208
    UNKNOWN_WITHDRAWAL = 209
    UNKNOWN_BATCH = 210
    ACTION_TYPE_MISMATCH = 211
    TOO_MANY_SUBSCRIPTIONS = 212
    TOO_MANY_IN_FLIGHT = 213
    NODE_UNAVAILABLE = 220
    INTERNAL = 221


GATEWAY_MESSAGES: dict[GatewayCode, str] = {
    GatewayCode.MALFORMED_JSON: "request body is not valid JSON",
    GatewayCode.WRONG_TYPE: "a field has the wrong JSON type",
    GatewayCode.UNKNOWN_FIELD: "the request has a field the schema does not define",
    GatewayCode.MISSING_FIELD: "the request lacks a required field",
    GatewayCode.INVALID_VALUE: "a field's value is outside what the schema allows",
    GatewayCode.NOT_FOUND: "no such route",
    GatewayCode.METHOD_NOT_ALLOWED: "the route does not accept this HTTP method",
    GatewayCode.UNKNOWN_MARKET: "no market has this id",
    GatewayCode.UNKNOWN_ACCOUNT: "this subaccount has never been funded",
    GatewayCode.UNKNOWN_WITHDRAWAL: "no withdrawal with this id has a proof yet",
    GatewayCode.UNKNOWN_BATCH: "no batch with this index",
    GatewayCode.ACTION_TYPE_MISMATCH: "the action's type does not match the route",
    GatewayCode.TOO_MANY_SUBSCRIPTIONS: "this connection holds the maximum number of subscriptions",
    GatewayCode.TOO_MANY_IN_FLIGHT: "this connection has the maximum number of unanswered actions",
    GatewayCode.NODE_UNAVAILABLE: "the node is starting or stopping; retry later",
    GatewayCode.INTERNAL: "internal error (reported to the operator)",
}
assert set(GATEWAY_MESSAGES) == set(GatewayCode), "every gateway code needs a message"

_GATEWAY_STATUS: dict[GatewayCode, int] = {
    GatewayCode.MALFORMED_JSON: 400,
    GatewayCode.WRONG_TYPE: 400,
    GatewayCode.UNKNOWN_FIELD: 400,
    GatewayCode.MISSING_FIELD: 400,
    GatewayCode.INVALID_VALUE: 400,
    GatewayCode.NOT_FOUND: 404,
    GatewayCode.METHOD_NOT_ALLOWED: 405,
    GatewayCode.UNKNOWN_MARKET: 404,
    GatewayCode.UNKNOWN_ACCOUNT: 404,
    GatewayCode.UNKNOWN_WITHDRAWAL: 404,
    GatewayCode.UNKNOWN_BATCH: 404,
    GatewayCode.ACTION_TYPE_MISMATCH: 400,
    GatewayCode.TOO_MANY_SUBSCRIPTIONS: 429,
    GatewayCode.TOO_MANY_IN_FLIGHT: 429,
    GatewayCode.NODE_UNAVAILABLE: 503,
    GatewayCode.INTERNAL: 500,
}
assert set(_GATEWAY_STATUS) == set(GatewayCode)

_ADMISSION_STATUS: dict[AdmissionCode, int] = {
    AdmissionCode.MALFORMED_ENCODING: 400,
    AdmissionCode.FIELD_OUT_OF_RANGE: 400,
    AdmissionCode.UNSUPPORTED_ACTION: 400,
    # a signature that does not prove the signer: 401, as for a failed login
    AdmissionCode.SIGNATURE_MALFORMED: 401,
    AdmissionCode.SIGNATURE_BAD_V: 401,
    AdmissionCode.SIGNATURE_HIGH_S: 401,
    AdmissionCode.SIGNATURE_INVALID: 401,
    AdmissionCode.SIGNER_NOT_AUTHORISED: 401,
    # a proven signer that may not do this: 403
    AdmissionCode.AGENT_NOT_PERMITTED: 403,
    AdmissionCode.AGENT_EXPIRED: 403,
    AdmissionCode.AGENT_SUBACCOUNT_NOT_PERMITTED: 403,
    AdmissionCode.AGENT_REGISTRATION_INVALID: 400,
    AdmissionCode.AGENTS_LIMIT: 409,
    # a replay, or a nonce the window has passed: the request conflicts with what was admitted
    AdmissionCode.NONCE_USED: 409,
    AdmissionCode.NONCE_BELOW_WINDOW: 409,
    AdmissionCode.NONCE_TOO_OLD: 400,
    AdmissionCode.NONCE_TOO_FAR_AHEAD: 400,
    AdmissionCode.PAYLOAD_TOO_LARGE: 413,
    AdmissionCode.RATE_LIMITED: 429,
}
assert set(_ADMISSION_STATUS) == set(AdmissionCode)

# STF refusals: the action was sequenced and refused by the state machine (422: well formed,
# not executable), except a batch-capacity refusal, which asks for a retry
_STF_STATUS_DEFAULT = 422
_STF_STATUS: dict[ErrorCode, int] = {ErrorCode.OK: 200, ErrorCode.BATCH_COST_LIMIT: 503}

Code = ErrorCode | AdmissionCode | GatewayCode


def status_of(code: Code) -> int:
    """The HTTP status that goes with a code (the same on WebSocket errors)."""
    if isinstance(code, GatewayCode):
        return _GATEWAY_STATUS[code]
    if isinstance(code, AdmissionCode):
        return _ADMISSION_STATUS[code]
    return _STF_STATUS.get(code, _STF_STATUS_DEFAULT)


def code_name(code: Code) -> str:
    return code.name


def _base_message(code: Code) -> str:
    if isinstance(code, GatewayCode):
        return GATEWAY_MESSAGES[code]
    if isinstance(code, AdmissionCode):
        return ADMISSION_MESSAGES[code]
    return ERROR_MESSAGES[code]


class ApiError(Exception):
    """A refusal on its way to the client: ``code`` is stable, ``detail`` is for humans."""

    def __init__(self, code: Code, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code.name}: {self.message}")

    @property
    def status(self) -> int:
        return status_of(self.code)

    @property
    def message(self) -> str:
        base = _base_message(self.code)
        return f"{base} ({self.detail})" if self.detail else base

    @classmethod
    def from_admission(cls, error: AdmissionError) -> ApiError:
        return cls(error.code, error.detail)
