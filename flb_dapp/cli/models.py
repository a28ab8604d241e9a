"""Loading a base model with an adapter applied, for `flb pull --merge`, `flb chat` and `flb eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flb_dapp.lora.adapter import Adapter


def resolve_model(model: str, cache_dir: str) -> str:
    """``tiny`` / ``smollm2`` become their built or converted folders; anything else is a path or id."""
    from flb_dapp.taskspec import SMOLLM2, TINY, TaskSpec, model_path

    if model in (TINY, SMOLLM2):
        return model_path(TaskSpec(model=model), cache_dir)
    return model


def load_with_adapter(
    model: str, adapter: Adapter | None, device: str = "cpu", quantization: str | None = None
) -> tuple[Any, Any]:
    """(model ready for inference, tokenizer); with ``adapter`` the LoRA layers hold its weights."""
    from flb_dapp.training.models import load_model, load_tokenizer
    from flb_dapp.training.peft_io import load_adapter_weights, wrap_with_lora

    tokenizer = load_tokenizer(model)
    loaded = load_model(
        model,
        device=device,
        quantization=quantization,  # type: ignore[arg-type]
        for_training=False,
    )
    if adapter is not None:
        loaded = wrap_with_lora(loaded, adapter.metadata)
        load_adapter_weights(loaded, adapter)
        loaded.eval()
    return loaded, tokenizer


def save_merged(model: str, adapter: Adapter, dest: Path) -> None:
    """Merge ``adapter`` into the base model (peft ``merge_and_unload``) and save model + tokenizer."""
    peft_model, tokenizer = load_with_adapter(model, adapter)
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def generate(model: Any, tokenizer: Any, messages: list[dict[str, str]], max_new_tokens: int) -> str:
    """Greedy continuation of a chat (the tokenizer's chat template, or plain text without one)."""
    import torch

    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        prompt = "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
    encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    device = next(model.parameters()).device
    # NOTE: some tokenizers add token_type_ids, which causal LMs' generate() refuses.
    encoded = {k: v.to(device) for k, v in encoded.items() if k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        output = model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=_stop_ids(tokenizer),
        )
    new_tokens = output[0, encoded["input_ids"].shape[1] :]
    return str(tokenizer.decode(new_tokens, skip_special_tokens=True)).strip()


def _stop_ids(tokenizer: Any) -> list[int]:
    """End of turn as well as end of text: chat models close an answer with their turn marker."""
    ids = {tokenizer.eos_token_id}
    for marker in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        token_id = tokenizer.convert_tokens_to_ids(marker)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return sorted(i for i in ids if i is not None)
