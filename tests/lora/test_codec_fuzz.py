"""Whatever bytes arrive, decoding ends in a value or an AdapterValidationError, nothing else."""

from __future__ import annotations

import contextlib
import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flb_dapp.exceptions import AdapterValidationError
from flb_dapp.lora import decode_adapter, encode_adapter
from tests.lora.test_codec import make_adapter

GOOD = encode_adapter(make_adapter())
(GOOD_HEADER_LEN,) = struct.unpack("<Q", GOOD[:8])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)


def _decodes_or_refuses(data: bytes) -> None:
    with contextlib.suppress(AdapterValidationError):
        decode_adapter(data)


@pytest.mark.fuzzing
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data: bytes) -> None:
    _decodes_or_refuses(data)


@pytest.mark.fuzzing
@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_headers(header: object) -> None:
    text = json.dumps(header).encode()
    _decodes_or_refuses(struct.pack("<Q", len(text)) + text + b"\0" * 64)


@pytest.mark.fuzzing
@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(GOOD) - 1), st.integers(0, 255))
def test_one_byte_flipped_in_a_real_adapter(position: int, value: int) -> None:
    data = bytearray(GOOD)
    data[position] = value
    _decodes_or_refuses(bytes(data))


@pytest.mark.fuzzing
@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["r", "lora_alpha", "round", "num_samples", "target_modules", "format"]),
        st.text(max_size=40),
        max_size=3,
    )
)
def test_mutated_metadata_values(changes: dict[str, str]) -> None:
    header = json.loads(GOOD[8 : 8 + GOOD_HEADER_LEN])
    header["__metadata__"].update(changes)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    _decodes_or_refuses(struct.pack("<Q", len(text)) + text + GOOD[8 + GOOD_HEADER_LEN :])
