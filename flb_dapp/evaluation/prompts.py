"""The prompt formats that training and evaluation share.

Letters (the default): a question becomes a user turn listing lettered options; the answer is the
bare letter in the assistant turn. Models with a chat template get chat messages (k-shot examples
as earlier turns); base models without one get plain ``Question ... Answer: B`` text. Cloze: the
context of :func:`flb_dapp.evaluation.cloze.render_context` and the correct option's text as its
continuation (:func:`cloze_record`). Training and evaluation must render questions identically, or
the evaluation measures a prompt the model never saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flb_dapp.evaluation.datasets import LETTERS, MCQuestion

INSTRUCTION = "Answer with the letter of the correct option."


def format_question(q: MCQuestion) -> str:
    """The user turn: the question, its lettered options and the instruction."""
    lines = [q.question, *(f"{LETTERS[i]}. {opt}" for i, opt in enumerate(q.options)), INSTRUCTION]
    return "\n".join(lines)


def chat_messages(q: MCQuestion, shots: Sequence[MCQuestion] = ()) -> list[dict[str, str]]:
    """Chat turns: each shot as a user/assistant pair, then the question as the last user turn."""
    messages: list[dict[str, str]] = []
    for shot in shots:
        messages.append({"role": "user", "content": format_question(shot)})
        messages.append({"role": "assistant", "content": shot.answer})
    messages.append({"role": "user", "content": format_question(q)})
    return messages


def plain_prompt(q: MCQuestion, shots: Sequence[MCQuestion] = ()) -> str:
    """The prompt for a tokenizer without a chat template; the answer follows as `` B``."""
    blocks = [f"{format_question(s)}\nAnswer: {s.answer}" for s in shots]
    blocks.append(f"{format_question(q)}\nAnswer:")
    return "\n\n".join(blocks)


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompt(
    tokenizer: Any, q: MCQuestion, shots: Sequence[MCQuestion] = (), chat: bool | None = None
) -> str:
    """The full prompt text up to the answer position, as the model sees it (``chat``: in the chat
    template; None: whenever the tokenizer has one)."""
    if has_chat_template(tokenizer) if chat is None else chat:
        text = tokenizer.apply_chat_template(
            chat_messages(q, shots), tokenize=False, add_generation_prompt=True
        )
        return str(text)
    return plain_prompt(q, shots)


def prompt_completion_record(q: MCQuestion, chat: bool = True) -> dict[str, Any]:
    """A trl prompt-completion record for ``q`` (conversational when ``chat``): trl then puts the
    loss on the answer only."""
    if chat:
        return {
            "prompt": chat_messages(q),
            "completion": [{"role": "assistant", "content": q.answer}],
        }
    return {"prompt": plain_prompt(q), "completion": f" {q.answer}"}


def cloze_record(tokenizer: Any, q: MCQuestion, chat: bool) -> dict[str, Any]:
    """A trl prompt-completion record in the cloze formulation: the prompt is the evaluator's context
    text (chat template applied when ``chat``), the completion `` {correct option}``, so training
    puts the loss on exactly the tokens the cloze evaluator scores (trl adds the EOS token)."""
    from flb_dapp.evaluation.cloze import cloze_continuation, render_context  # it imports torch

    return {
        "prompt": render_context(tokenizer, q, chat),
        "completion": cloze_continuation(q.options[q.answer_index]),
    }
