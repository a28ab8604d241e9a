"""Token ids of a prompt-completion record, with where the completion starts.

Shared by the loops that do not go through trl (Opacus DP-SGD, mlx) so they train on exactly the
tokens trl's completion-only loss would: the completion starts where the tokenized prompt and the
tokenized prompt+completion first differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def encode_record(tokenizer: Any, record: Mapping[str, Any]) -> tuple[list[int], int]:
    """``(ids of prompt+completion, index of the first completion token)``."""
    prompt, completion = record["prompt"], record["completion"]
    if isinstance(prompt, list):  # conversational: render with the chat template
        p_ids = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(list(prompt) + list(completion), tokenize=True)
    else:
        eos = tokenizer.eos_token or ""
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        full = tokenizer(prompt + completion + eos, add_special_tokens=False)["input_ids"]
    p_ids, full = list(p_ids), list(full)
    start = 0
    while start < min(len(p_ids), len(full)) and p_ids[start] == full[start]:
        start += 1
    return full, start
