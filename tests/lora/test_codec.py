"""The adapter codec: exact encoding, round trips, and each refusal with its own message."""

from __future__ import annotations

import io
import json
import pickle
import struct

import numpy as np
import pytest
import safetensors
import safetensors.numpy

from flb_dapp.exceptions import AdapterValidationError
from flb_dapp.lora import Adapter, AdapterLimits, AdapterMetadata, decode_adapter, encode_adapter
from flb_dapp.lora.codec import read_header

PREFIX = "base_model.model.model.layers"
CLIENT = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"


def make_adapter(layers: int = 2, r: int = 4, hidden: int = 8, seed: int = 0) -> Adapter:
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(layers):
        for module in ("q_proj", "v_proj"):
            base = f"{PREFIX}.{layer}.self_attn.{module}"
            tensors[f"{base}.lora_A.weight"] = rng.standard_normal((r, hidden)).astype(np.float32)
            tensors[f"{base}.lora_B.weight"] = rng.standard_normal((hidden, r)).astype(np.float32)
    metadata = AdapterMetadata(
        base_model="tiny-llama",
        r=r,
        lora_alpha=2 * r,
        target_modules=("q_proj", "v_proj"),
        round=3,
        client=CLIENT,
        num_samples=120,
    )
    return Adapter(tensors=tensors, metadata=metadata, extra={"train_loss": "1.25"})


def raw_file(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file written by the safetensors library itself, FLB metadata by default."""
    if metadata is None:
        metadata = json.loads(json.dumps(_header_meta(make_adapter())))
    return safetensors.numpy.save(tensors, metadata=metadata)


def _header_meta(adapter: Adapter) -> dict[str, str]:
    data = encode_adapter(adapter)
    (n,) = struct.unpack("<Q", data[:8])
    return dict(json.loads(data[8 : 8 + n])["__metadata__"])


# --- encoding ---------------------------------------------------------------------------------------------
def test_header_holds_the_flb_metadata() -> None:
    assert _header_meta(make_adapter()) == {
        "format": "flb-lora/1",
        "base_model": "tiny-llama",
        "r": "4",
        "lora_alpha": "8",
        "target_modules": '["q_proj", "v_proj"]',
        "round": "3",
        "client": CLIENT,
        "num_samples": "120",
        "train_loss": "1.25",
    }


def test_encoding_is_deterministic_and_readable_by_safetensors() -> None:
    adapter = make_adapter()
    data = encode_adapter(adapter)
    reordered = Adapter(dict(reversed(list(adapter.tensors.items()))), adapter.metadata, dict(adapter.extra))
    assert encode_adapter(reordered) == data
    (n,) = struct.unpack("<Q", data[:8])
    assert (8 + n) % 8 == 0  # tensor data 8-byte aligned
    loaded = safetensors.numpy.load(data)
    assert loaded.keys() == adapter.tensors.keys()
    for key, value in adapter.tensors.items():
        assert np.array_equal(loaded[key], value)


def test_round_trip_is_exact() -> None:
    adapter = make_adapter()
    decoded = decode_adapter(encode_adapter(adapter), expected_layout=adapter.layout())
    assert decoded.metadata == adapter.metadata
    assert decoded.extra == {"train_loss": "1.25"}
    assert decoded.tensors.keys() == adapter.tensors.keys()
    for key, value in adapter.tensors.items():
        assert decoded.tensors[key].dtype == np.float32
        assert np.array_equal(decoded.tensors[key], value)


def test_half_precision_is_converted_to_float32() -> None:
    torch = pytest.importorskip("torch")
    import safetensors.torch

    adapter = make_adapter()
    values = {k: torch.from_numpy(v) for k, v in adapter.tensors.items()}
    for dtype in (torch.float16, torch.bfloat16):
        data = safetensors.torch.save({k: v.to(dtype) for k, v in values.items()}, _header_meta(adapter))
        decoded = decode_adapter(data)
        for key, value in values.items():
            assert decoded.tensors[key].dtype == np.float32
            assert np.array_equal(decoded.tensors[key], value.to(dtype).float().numpy())


def test_encode_refuses_what_decode_would() -> None:
    adapter = make_adapter()
    key = next(iter(adapter.tensors))
    adapter.tensors[key][0, 0] = np.nan
    with pytest.raises(AdapterValidationError, match="non-finite"):
        encode_adapter(adapter)
    with pytest.raises(AdapterValidationError, match="may not redefine"):
        encode_adapter(Adapter(make_adapter().tensors, make_adapter().metadata, {"round": "9"}))


# --- refusals ---------------------------------------------------------------------------------------------
def test_a_pickle_named_safetensors_is_refused(tmp_path) -> None:
    path = tmp_path / "adapter.safetensors"
    path.write_bytes(pickle.dumps(make_adapter().tensors))
    with pytest.raises(AdapterValidationError, match="this is a Python pickle"):
        decode_adapter(path.read_bytes())


def test_a_torch_save_file_is_refused() -> None:
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)
    with pytest.raises(AdapterValidationError, match="zip archive"):
        decode_adapter(buffer.getvalue())
    legacy = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(AdapterValidationError, match="Python pickle"):
        decode_adapter(legacy.getvalue())


def test_a_header_claiming_10_gb_is_refused_before_reading() -> None:
    data = struct.pack("<Q", 10_000_000_000) + b'{"__metadata__":{}}'
    with pytest.raises(
        AdapterValidationError, match="header claims 10000000000 bytes, over the limit of 8388608"
    ):
        decode_adapter(data)


def test_a_header_longer_than_the_file_is_refused() -> None:
    with pytest.raises(AdapterValidationError, match="claims 100 bytes but the file has only 4"):
        decode_adapter(struct.pack("<Q", 100) + b"{}  ")


def test_nan_weights_are_refused() -> None:
    tensors = dict(make_adapter().tensors)
    key = sorted(tensors)[1]
    tensors[key] = tensors[key].copy()
    tensors[key][0, :2] = [np.nan, np.inf]
    with pytest.raises(
        AdapterValidationError, match=rf"tensor '{key}' holds non-finite values \(1 NaN, 1 Inf\)"
    ):
        decode_adapter(raw_file(tensors))


def test_a_missing_lora_key_is_named() -> None:
    tensors = dict(make_adapter().tensors)
    del tensors[f"{PREFIX}.1.self_attn.v_proj.lora_B.weight"]
    with pytest.raises(
        AdapterValidationError, match=rf"missing LoRA key '{PREFIX}.1.self_attn.v_proj.lora_B.weight'"
    ):
        decode_adapter(raw_file(tensors))


def test_expected_layout_names_the_missing_key() -> None:
    adapter = make_adapter(layers=2)
    layout = adapter.layout()
    layout[f"{PREFIX}.2.self_attn.q_proj.lora_A.weight"] = (4, 8)
    with pytest.raises(
        AdapterValidationError, match=rf"missing LoRA key '{PREFIX}.2.self_attn.q_proj.lora_A.weight'"
    ):
        decode_adapter(encode_adapter(adapter), expected_layout=layout)


def test_expected_layout_checks_shapes_and_extra_keys() -> None:
    adapter = make_adapter()
    layout = make_adapter(hidden=16).layout()
    with pytest.raises(AdapterValidationError, match=r"has shape \(4, 8\), expected \(4, 16\)"):
        decode_adapter(encode_adapter(adapter), expected_layout=layout)
    smaller = make_adapter(layers=1).layout()
    with pytest.raises(
        AdapterValidationError,
        match=rf"unexpected key '{PREFIX}.1.self_attn.q_proj.lora_A.weight' and 3 more",
    ):
        decode_adapter(encode_adapter(adapter), expected_layout=smaller)


def test_non_lora_keys_are_refused() -> None:
    tensors = dict(make_adapter().tensors)
    tensors["base_model.model.lm_head.weight"] = np.zeros((4, 4), np.float32)
    with pytest.raises(
        AdapterValidationError, match=r"key 'base_model\.model\.lm_head\.weight' is not a LoRA weight"
    ):
        decode_adapter(raw_file(tensors))


def test_rank_must_match_the_metadata() -> None:
    with pytest.raises(AdapterValidationError, match="do not have rank r=4"):
        decode_adapter(raw_file(make_adapter(r=2).tensors))


def test_modules_outside_target_modules_are_refused() -> None:
    tensors = {k.replace("v_proj", "k_proj"): v for k, v in make_adapter().tensors.items()}
    with pytest.raises(
        AdapterValidationError, match=r"k_proj' is not among target_modules \['q_proj', 'v_proj'\]"
    ):
        decode_adapter(raw_file(tensors))


def test_disallowed_dtype_is_refused() -> None:
    tensors = {k: v.astype(np.float64) for k, v in make_adapter().tensors.items()}
    with pytest.raises(AdapterValidationError, match="has dtype 'F64'; allowed: \\['BF16', 'F16', 'F32'\\]"):
        decode_adapter(raw_file(tensors))


def test_limits_on_size_and_tensor_count() -> None:
    data = encode_adapter(make_adapter())
    with pytest.raises(
        AdapterValidationError, match=f"adapter file is {len(data)} bytes, over the limit of 1000"
    ):
        decode_adapter(data, AdapterLimits(max_bytes=1000))
    with pytest.raises(AdapterValidationError, match="adapter holds 8 tensors, over the limit of 3"):
        decode_adapter(data, AdapterLimits(max_tensors=3))
    with pytest.raises(AdapterValidationError, match="rank 4 is over the limit of 2"):
        decode_adapter(data, AdapterLimits(max_rank=2))


def test_foreign_metadata_is_refused() -> None:
    tensors = make_adapter().tensors
    with pytest.raises(AdapterValidationError, match="header format is 'pt', expected 'flb-lora/1'"):
        decode_adapter(raw_file(tensors, {"format": "pt"}))
    meta = _header_meta(make_adapter())
    meta["r"] = "four"
    with pytest.raises(AdapterValidationError, match="metadata r='four' is not an integer"):
        decode_adapter(raw_file(tensors, meta))


def test_malformed_containers_are_refused() -> None:
    with pytest.raises(AdapterValidationError, match="too short"):
        decode_adapter(b"abc")
    with pytest.raises(AdapterValidationError, match="header is not JSON"):
        decode_adapter(struct.pack("<Q", 2) + b"{{")
    good = encode_adapter(make_adapter())
    with pytest.raises(AdapterValidationError, match="data section is"):
        decode_adapter(good + b"\0" * 8)
    header = {"x.lora_A.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 10**6]}}
    blob = json.dumps(header).encode()
    with pytest.raises(AdapterValidationError, match=r"offsets \[0, 1000000\] outside the file"):
        read_header(struct.pack("<Q", len(blob)) + blob, AdapterLimits())


def _with_header(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def test_hostile_json_is_refused_before_the_parser_sees_it() -> None:
    # NOTE: 200,000 brackets overflow the C stack in json.loads when the recursion limit is high
    # (pytest raises it to 100,000): this must be a rejection, not a crash of the oracle.
    with pytest.raises(AdapterValidationError, match="safetensors header nests deeper than 3 levels"):
        decode_adapter(_with_header(b"[" * 200_000 + b"]" * 200_000))
    with pytest.raises(AdapterValidationError, match="holds a number literal longer than 20 characters"):
        decode_adapter(_with_header(b'{"a":' + b"9" * 5000 + b"}"))
    # Brackets inside strings do not count as nesting.
    key = "[" * 50 + ".lora_A.weight"
    with pytest.raises(AdapterValidationError, match=r"missing LoRA key .\[{50}\.lora_B\.weight"):
        decode_adapter(raw_file({key: np.zeros((4, 8), np.float32)}, _header_meta(make_adapter())))
    meta = _header_meta(make_adapter())
    meta["target_modules"] = "[" * 100_000
    with pytest.raises(AdapterValidationError, match=r"target_modules=.* is not a JSON list of names"):
        decode_adapter(raw_file(make_adapter().tensors, meta))
