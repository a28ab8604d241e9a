"""The adapter file: one safetensors file, PEFT key names, FLB's metadata in its header.

Adapters arrive from strangers, so decoding is defensive and cheap to refuse: the size, the
8-byte header length and the JSON header are checked here before the safetensors library sees the
bytes, so a file claiming a 10 GB header costs nothing. Pickles and torch zip files are refused
by their magic bytes and are never unpickled. Every problem is an :class:`AdapterValidationError`
whose message names the key or field at fault.

Encoding is deterministic (sorted keys, compact JSON, float32 little-endian), so the same
adapter always gives the same bytes, hence the same CID.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import safetensors

from flb_dapp.exceptions import AdapterValidationError
from flb_dapp.lora.adapter import ADAPTER_FORMAT, Adapter, AdapterMetadata

_DTYPE_SIZES = {
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F64": 8,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "U16": 2,
    "U32": 4,
    "U64": 8,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<part>[AB])\.weight$")
RESERVED_METADATA = (
    "format",
    "base_model",
    "r",
    "lora_alpha",
    "target_modules",
    "round",
    "client",
    "num_samples",
)


@dataclass(frozen=True)
class AdapterLimits:
    """What a received adapter file may be at most. The defaults fit LoRA on 8B-class models."""

    max_bytes: int = 1 << 30
    max_header_bytes: int = 8 << 20
    max_tensors: int = 8192
    max_rank: int = 1024
    allowed_dtypes: frozenset[str] = field(default_factory=lambda: frozenset({"F32", "F16", "BF16"}))


# --- encoding --------------------------------------------------------------------------------------------
def metadata_to_header(adapter: Adapter) -> dict[str, str]:
    """The ``__metadata__`` strings for an adapter (FLB fields plus ``adapter.extra``)."""
    meta = adapter.metadata
    clash = sorted(set(adapter.extra) & set(RESERVED_METADATA))
    if clash:
        raise AdapterValidationError(f"adapter.extra may not redefine FLB metadata fields: {clash}")
    header = {
        "format": meta.format,
        "base_model": meta.base_model,
        "r": str(meta.r),
        "lora_alpha": str(meta.lora_alpha),
        "target_modules": json.dumps(list(meta.target_modules)),
        "round": str(meta.round),
        "client": meta.client,
        "num_samples": str(meta.num_samples),
    }
    for key, value in adapter.extra.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise AdapterValidationError(
                f"adapter.extra must map str to str; {key!r} -> {type(value).__name__}"
            )
        header[key] = value
    return header


def encode_adapter(adapter: Adapter) -> bytes:
    """One safetensors file: float32 tensors sorted by key, FLB metadata in ``__metadata__``."""
    tensors = {key: np.ascontiguousarray(value, dtype="<f4") for key, value in adapter.tensors.items()}
    check_lora_tensors(tensors, adapter.metadata)
    check_finite(tensors)
    header: dict[str, object] = {"__metadata__": metadata_to_header(adapter)}
    offset = 0
    for key in sorted(tensors):
        nbytes = tensors[key].nbytes
        shape = list(tensors[key].shape)
        header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header_bytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # NOTE: 8-byte aligned data, as safetensors writes it
    parts = [struct.pack("<Q", len(header_bytes)), header_bytes]
    parts.extend(tensors[key].tobytes() for key in sorted(tensors))
    return b"".join(parts)


# --- decoding --------------------------------------------------------------------------------------------
def _sniff(data: bytes | memoryview) -> None:
    """Refuse the formats people send by mistake, by name, before reading anything else."""
    head = bytes(data[:4])
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        raise AdapterValidationError(
            "this is a Python pickle (e.g. torch.save / adapter_model.bin); FLB accepts safetensors only "
            "and never unpickles received files"
        )
    if head == b"PK\x03\x04":
        raise AdapterValidationError(
            "this is a zip archive (torch.save's format); FLB accepts safetensors only and never loads it"
        )
    if len(data) < 8:
        raise AdapterValidationError(f"file of {len(data)} bytes is too short to be safetensors")


def read_header(
    data: bytes | memoryview, limits: AdapterLimits
) -> tuple[dict[str, dict], dict[str, str], int]:
    """Check the container and return (tensor entries, ``__metadata__``, data start offset)."""
    if len(data) > limits.max_bytes:
        raise AdapterValidationError(
            f"adapter file is {len(data)} bytes, over the limit of {limits.max_bytes}"
        )
    _sniff(data)
    (header_len,) = struct.unpack("<Q", bytes(data[:8]))
    if header_len > limits.max_header_bytes:
        raise AdapterValidationError(
            f"safetensors header claims {header_len} bytes, over the limit of {limits.max_header_bytes}; "
            "refused before reading it"
        )
    if 8 + header_len > len(data):
        raise AdapterValidationError(
            f"safetensors header claims {header_len} bytes but the file has only {len(data) - 8} after it"
        )
    try:
        text = bytes(data[8 : 8 + header_len]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AdapterValidationError(f"not a safetensors file: its header is not UTF-8 ({exc})") from exc
    header = _parse_json(text, "safetensors header", max_depth=3)
    if not isinstance(header, dict):
        raise AdapterValidationError("not a safetensors file: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise AdapterValidationError("safetensors __metadata__ must map strings to strings")
    if len(header) > limits.max_tensors:
        raise AdapterValidationError(
            f"adapter holds {len(header)} tensors, over the limit of {limits.max_tensors}"
        )
    data_len = len(data) - 8 - header_len
    spans = []
    for key, entry in header.items():
        spans.append(_check_entry(key, entry, limits, data_len))
    spans.sort()
    expected_start = 0
    for start, end, key in spans:
        if start != expected_start:
            raise AdapterValidationError(
                f"tensor {key!r} data does not follow the previous tensor's (gap or overlap)"
            )
        expected_start = end
    if expected_start != data_len:
        raise AdapterValidationError(
            f"safetensors data section is {data_len} bytes but its tensors cover {expected_start}"
        )
    return header, metadata, 8 + header_len


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKETS = re.compile(r"[\[\]{}]")
_LONG_NUMBER = re.compile(r"[0-9.eE+-]{21,}")


def _parse_json(text: str, what: str, max_depth: int) -> Any:
    """``json.loads`` for received text, after a linear scan that refuses what could hurt it.

    The stdlib parser recurses once per nesting level (a header of 100,000 ``[`` overflows the C
    stack when the recursion limit is high, as under pytest) and turns a 5,000-digit literal into a
    ValueError it does not document; a safetensors header needs neither, so both are refused here
    with a reason, and only AdapterValidationError ever leaves.
    """
    outside_strings = _JSON_STRING.sub('""', text)
    depth = deepest = 0
    for bracket in _JSON_BRACKETS.findall(outside_strings):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > max_depth:
            raise AdapterValidationError(f"{what} nests deeper than {max_depth} levels")
    if _LONG_NUMBER.search(outside_strings):
        raise AdapterValidationError(f"{what} holds a number literal longer than 20 characters")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise AdapterValidationError(f"{what} is not JSON ({exc})") from exc


def _check_entry(key: str, entry: object, limits: AdapterLimits, data_len: int) -> tuple[int, int, str]:
    if not isinstance(entry, dict):
        raise AdapterValidationError(f"tensor {key!r}: header entry is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in limits.allowed_dtypes:
        raise AdapterValidationError(
            f"tensor {key!r} has dtype {dtype!r}; allowed: {sorted(limits.allowed_dtypes)}"
        )
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise AdapterValidationError(f"tensor {key!r} has a malformed shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= data_len
    ):
        raise AdapterValidationError(f"tensor {key!r} has data offsets {offsets!r} outside the file")
    expected = math.prod(shape) * _DTYPE_SIZES[str(dtype)]
    if offsets[1] - offsets[0] != expected:
        raise AdapterValidationError(
            f"tensor {key!r}: shape {shape} of {dtype} needs {expected} bytes, "
            f"its offsets span {offsets[1] - offsets[0]}"
        )
    return offsets[0], offsets[1], key


def _to_float32(raw: bytes | bytearray, dtype: str, shape: Sequence[int]) -> np.ndarray:
    if dtype == "F32":
        array = np.frombuffer(raw, dtype="<f4").astype(np.float32)  # astype: a writable copy
    elif dtype == "F16":
        array = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":
        # bfloat16 is the top half of a float32
        array = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:  # pragma: no cover - read_header already refused it
        raise AdapterValidationError(f"dtype {dtype} cannot be converted")
    return array.reshape(tuple(shape))


def read_tensors(
    data: bytes | memoryview, limits: AdapterLimits | None = None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Any safetensors file of float tensors -> (float32 arrays, ``__metadata__``), checked."""
    limits = limits or AdapterLimits()
    _, metadata, _ = read_header(data, limits)
    try:
        # NOTE: the safetensors library re-checks the container on its own; its parse is the one used.
        entries = safetensors.deserialize(bytes(data))
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise AdapterValidationError(f"not a valid safetensors file: {exc}") from exc
    tensors = {name: _to_float32(info["data"], info["dtype"], info["shape"]) for name, info in entries}
    check_finite(tensors)
    return tensors, metadata


def metadata_from_header(metadata: Mapping[str, str]) -> tuple[AdapterMetadata, dict[str, str]]:
    """Parse FLB's ``__metadata__`` into (AdapterMetadata, the extra fields)."""
    if metadata.get("format") != ADAPTER_FORMAT:
        raise AdapterValidationError(
            f"header format is {metadata.get('format')!r}, expected {ADAPTER_FORMAT!r} (not an FLB adapter)"
        )
    missing = [key for key in RESERVED_METADATA if key not in metadata]
    if missing:
        raise AdapterValidationError(f"adapter metadata lacks {missing}")

    def integer(key: str) -> int:
        try:
            value = int(metadata[key])
        except ValueError:
            raise AdapterValidationError(f"metadata {key}={metadata[key]!r} is not an integer") from None
        if value < 0:
            raise AdapterValidationError(f"metadata {key}={value} is negative")
        return value

    try:
        targets = _parse_json(metadata["target_modules"], "metadata target_modules", max_depth=1)
    except AdapterValidationError:
        targets = None
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise AdapterValidationError(
            f"metadata target_modules={metadata['target_modules']!r} is not a JSON list of names"
        )
    meta = AdapterMetadata(
        base_model=metadata["base_model"],
        r=integer("r"),
        lora_alpha=integer("lora_alpha"),
        target_modules=tuple(targets),
        round=integer("round"),
        client=metadata["client"],
        num_samples=integer("num_samples"),
        format=metadata["format"],
    )
    extra = {k: v for k, v in metadata.items() if k not in RESERVED_METADATA}
    return meta, extra


def decode_adapter(
    data: bytes | memoryview,
    limits: AdapterLimits | None = None,
    expected_layout: Mapping[str, Sequence[int]] | None = None,
) -> Adapter:
    """Parse and validate a received adapter file; see the module docstring for what is refused."""
    limits = limits or AdapterLimits()
    tensors, raw_metadata = read_tensors(data, limits)
    metadata, extra = metadata_from_header(raw_metadata)
    if metadata.r > limits.max_rank:
        raise AdapterValidationError(f"LoRA rank {metadata.r} is over the limit of {limits.max_rank}")
    check_lora_tensors(tensors, metadata)
    if expected_layout is not None:
        check_layout(tensors, expected_layout)
    return Adapter(tensors=tensors, metadata=metadata, extra=extra)


# --- validation rules --------------------------------------------------------------------------------------
def check_finite(tensors: Mapping[str, np.ndarray]) -> None:
    """Refuse NaN and infinities: one of them poisons every average they enter."""
    for key in sorted(tensors):
        array = tensors[key]
        if not np.isfinite(array).all():
            nan, inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
            raise AdapterValidationError(f"tensor {key!r} holds non-finite values ({nan} NaN, {inf} Inf)")


def _targets_module(module: str, targets: Sequence[str]) -> bool:
    return any(module == t or module.endswith("." + t) for t in targets)


def check_lora_tensors(tensors: Mapping[str, np.ndarray], metadata: AdapterMetadata) -> None:
    """Every key is a LoRA A/B weight, in pairs, of rank ``metadata.r``, on a targeted module."""
    if metadata.r <= 0:
        raise AdapterValidationError(f"LoRA rank r={metadata.r} must be positive")
    if not tensors:
        raise AdapterValidationError("adapter holds no tensors")
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, array in tensors.items():
        match = _LORA_KEY.match(key)
        if match is None:
            raise AdapterValidationError(
                f"key {key!r} is not a LoRA weight (expected '<module>.lora_A.weight' or '.lora_B.weight')"
            )
        if array.ndim != 2:
            raise AdapterValidationError(f"LoRA weight {key!r} has {array.ndim} dimensions, expected 2")
        modules.setdefault(match["module"], {})[match["part"]] = array
    # NOTE: PEFT's special values ("all-linear") cannot be checked by name; plain names can.
    check_targets = bool(metadata.target_modules) and "all-linear" not in metadata.target_modules
    for module, parts in sorted(modules.items()):
        for part in "AB":
            if part not in parts:
                raise AdapterValidationError(
                    f"missing LoRA key '{module}.lora_{part}.weight' (its pair is present)"
                )
        a, b = parts["A"], parts["B"]
        if a.shape[0] != metadata.r or b.shape[1] != metadata.r:
            raise AdapterValidationError(
                f"module {module!r}: lora_A {a.shape} and lora_B {b.shape} do not have rank r={metadata.r}"
            )
        if check_targets and not _targets_module(module, metadata.target_modules):
            raise AdapterValidationError(
                f"module {module!r} is not among target_modules {list(metadata.target_modules)}"
            )


def check_layout(tensors: Mapping[str, np.ndarray], expected: Mapping[str, Sequence[int]]) -> None:
    """The key set and every shape must equal ``expected`` (e.g. the global model's layout)."""
    missing = sorted(set(expected) - set(tensors))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise AdapterValidationError(f"missing LoRA key {missing[0]!r}{more}")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        more = f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""
        raise AdapterValidationError(f"unexpected key {unexpected[0]!r}{more} (not in the expected layout)")
    for key in sorted(expected):
        if tuple(tensors[key].shape) != tuple(expected[key]):
            raise AdapterValidationError(
                f"key {key!r} has shape {tuple(tensors[key].shape)}, expected {tuple(expected[key])}"
            )
