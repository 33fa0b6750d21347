"""Keccak-256 and secp256k1 public-key recovery, as pure functions (no I/O).

Signatures are 65 bytes ``r || s || v`` with ``v`` in {27, 28} (Ethereum's convention). Only
low-s signatures are accepted (s <= n/2) and ``v`` has one spelling, so a signature has exactly
one valid encoding and cannot be malleated into a second one. Recovery uses libsecp256k1
through coincurve.
"""

from __future__ import annotations

import coincurve
import sha3

__all__ = ["SECP256K1_N", "address_of_public_key", "keccak256", "recover_address", "sign_digest"]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2
SIGNATURE_BYTES = 65
DIGEST_BYTES = 32
V_OFFSET = 27


def keccak256(data: bytes) -> bytes:
    digest: bytes = sha3.keccak_256(data).digest()
    return digest


def address_of_public_key(public_key_uncompressed: bytes) -> bytes:
    assert len(public_key_uncompressed) == 65 and public_key_uncompressed[0] == 4
    return keccak256(public_key_uncompressed[1:])[12:]


def recover_address(digest: bytes, signature: bytes) -> bytes | None:
    """The signer's address, or None for a malformed, high-s or unrecoverable signature."""
    if len(digest) != DIGEST_BYTES or len(signature) != SIGNATURE_BYTES:
        return None
    r = int.from_bytes(signature[0:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    recovery_id = signature[64] - V_OFFSET  # only 27/28: one encoding per signature
    if not (0 < r < SECP256K1_N and 0 < s <= SECP256K1_HALF_N and recovery_id in (0, 1)):
        return None
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([recovery_id]), digest, hasher=None)
    except ValueError:
        return None
    return address_of_public_key(public_key.format(compressed=False))


def sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """Sign a 32-byte digest; returns low-s ``r || s || v`` with v in {27, 28} (tests, tools)."""
    assert len(digest) == DIGEST_BYTES
    recoverable = coincurve.PrivateKey(private_key).sign_recoverable(digest, hasher=None)
    signature: bytes = recoverable[:64] + bytes([recoverable[64] + V_OFFSET])
    return signature
