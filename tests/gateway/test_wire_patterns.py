"""The wire schema's string patterns accept exactly the language their docs state."""

from __future__ import annotations

import re
import string

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from rollbook.gateway.actions import SIGNATURE_HEX_PATTERN, SignatureHex
from rollbook.sequencer.signatures import SIGNATURE_BYTES

HEX_DIGITS = string.hexdigits  # both cases


# the plain statement of the language (65 repeats of a pair group for a signature: slow)
_PLAIN_PATTERN = re.compile("^0x([0-9a-fA-F]{2})*$")


def _is_hex_pairs(text: str) -> bool:
    """The reference: ``0x`` then an even number of hex digits (``$`` also allows one final
    newline, which ``bytes.fromhex`` skips as whitespace)."""
    return _PLAIN_PATTERN.search(text) is not None


_near_hex = st.text(alphabet=HEX_DIGITS + "xg \n", max_size=2 * SIGNATURE_BYTES + 6)


@given(st.one_of(_near_hex, _near_hex.map(lambda body: "0x" + body),
                 st.integers(0, 3 * SIGNATURE_BYTES).flatmap(
                     lambda n: st.text(alphabet=HEX_DIGITS, min_size=n, max_size=n)).map(
                     lambda body: "0x" + body)))
def test_signature_pattern_is_hex_pairs(text: str) -> None:
    assert (re.search(SIGNATURE_HEX_PATTERN, text) is not None) == _is_hex_pairs(text)


def test_signature_pattern_edges() -> None:
    signature = "0x" + "ab" * SIGNATURE_BYTES
    for text, accepted in ((signature, True), (signature + "c", False),
                           (signature[:-1], False), (signature + "cd", True), ("0x", True),
                           (signature.upper().replace("0X", "0x"), True),
                           ("0x" + "zz" * SIGNATURE_BYTES, False), ("ab" * SIGNATURE_BYTES, False)):
        assert (re.search(SIGNATURE_HEX_PATTERN, text) is not None) is accepted, text


def test_schema_refuses_odd_hex_signature() -> None:
    decoder = msgspec.json.Decoder(SignatureHex)
    assert decoder.decode(b'"0x' + b"ab" * SIGNATURE_BYTES + b'"') == "0x" + "ab" * SIGNATURE_BYTES
    try:
        decoder.decode(b'"0x' + b"ab" * SIGNATURE_BYTES + b'c"')
    except msgspec.ValidationError as error:
        assert "regex" in str(error)
    else:  # pragma: no cover - the assertion below reports it
        raise AssertionError("an odd number of hex digits was accepted")
