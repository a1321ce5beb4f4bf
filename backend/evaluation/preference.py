"""Preference accuracy: how often a model finds the chosen answer of a held-out pair likelier than the rejected one.

Each answer is scored as DPO scores it: the sum of its tokens' log-probabilities after the prompt, both
rendered with the model's chat template (the prompt with the generation prompt, then prompt and answer
together). Run for the base and for base + adapter on the same pairs, it says whether preference
training moved the model the intended way, without a reward model or generation.
"""

from __future__ import annotations

from typing import Any


def answer_logprob(model: Any, tokenizer: Any, prompt: list[dict[str, Any]], answer: list[dict[str, Any]]) -> float:
    """The summed log-probability of ``answer``'s tokens given ``prompt``."""
    import torch

    start = len(_ids(tokenizer, prompt, generation_prompt=True))
    ids = _ids(tokenizer, [*prompt, *answer], generation_prompt=False)
    inputs = torch.tensor([ids], device=model.device)
    with torch.no_grad():
        logits = model(input_ids=inputs).logits[0, :-1].float()
    logps = logits.log_softmax(-1).gather(-1, inputs[0, 1:, None])[:, 0]
    return float(logps[start - 1 :].sum())


def preference_accuracy(model: Any, tokenizer: Any, pairs: list[dict[str, Any]]) -> float:
    """The share of ``pairs`` (trl rows: prompt, chosen, rejected) whose chosen answer scores higher."""
    if not pairs:
        raise ValueError("no pairs to measure")
    wins = sum(
        answer_logprob(model, tokenizer, pair["prompt"], pair["chosen"])
        > answer_logprob(model, tokenizer, pair["prompt"], pair["rejected"])
        for pair in pairs
    )
    return wins / len(pairs)


def _ids(tokenizer: Any, messages: list[dict[str, Any]], *, generation_prompt: bool) -> list[int]:
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=True)
    ids = rendered["input_ids"] if isinstance(rendered, dict) or hasattr(rendered, "keys") else rendered
    return list(ids)
