"""Layouts whose rows carry a training signal other than "learn this reply": preference pairs, labels, steps.

Each is declared once here with its name, the objective it trains with and the words that say why
supervised fine-tuning refuses it, so detection (``backend.data.formats``), the refusal
(``backend.data.refusal``) and the routing of a file to its trainer (``backend.data.preference_rows``) read the
same table.
The rows are recognised from the public documentation of trl (paired, implicit-prompt, unpaired and
stepwise types, standard and conversational), OpenAI's preference fine-tuning, LLaMA-Factory
(``ranking`` pairs, ``kto_tag``) and Axolotl (template-free ``segments``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.data.turns import json_list

CONVERSATION_KEYS = ("messages", "conversations", "conversation")
PROMPT_KEYS = ("prompt", "instruction", "question")
"""Where a paired row with an explicit prompt keeps it (trl; LLaMA-Factory's Alpaca ranking rows)."""

_PAIRED = (
    ", which trains with DPO, ORPO or SimPO (preference training: set training.objective to dpo, orpo or simpo). "
    "Supervised fine-tuning learns one answer per prompt: training on both answers would teach the rejected ones "
    "too, so nothing was imported for it."
)
_UNPAIRED = (
    ", which trains with KTO (set training.objective to kto). Supervised fine-tuning would learn the undesirable "
    "ones as good answers, so nothing was imported for it."
)


@dataclass(frozen=True)
class Layout:
    """One layout: its name for people, the objective that trains it, and why SFT refuses it."""

    label: str
    objective: str  # "dpo/orpo" (paired), "kto" (unpaired), "prm" (stepwise), "sft" (SFT with spans not honoured)
    refusal: str  # the whole reason, without any suggestion
    label_field: str | None = None  # the per-row desirable/undesirable flag of unpaired data


LAYOUTS = {
    "preference": Layout(
        "prompt/chosen/rejected preference pairs",
        "dpo/orpo",
        "This file holds preference pairs (a prompt with a chosen and a rejected answer)" + _PAIRED,
    ),
    "preference_implicit": Layout(
        "chosen/rejected preference pairs without a separate prompt",
        "dpo/orpo",
        "This file holds preference pairs without a separate prompt ('chosen' and 'rejected' each hold the whole "
        "conversation)" + _PAIRED,
    ),
    "preference_openai": Layout(
        "OpenAI preference fine-tuning data",
        "dpo/orpo",
        "This file holds OpenAI preference fine-tuning data (input messages with a preferred and a non-preferred "
        "output)" + _PAIRED,
    ),
    "preference_sharegpt": Layout(
        "ShareGPT chosen/rejected preference pairs",
        "dpo/orpo",
        "This file holds ShareGPT preference pairs (a conversation with a chosen and a rejected reply, as in "
        "LLaMA-Factory's ranking data)" + _PAIRED,
    ),
    "kto": Layout(
        "prompt/completion/label KTO data",
        "kto",
        "This file holds unpaired preference (KTO) data: completions labelled desirable (true) or undesirable "
        "(false) in 'label'" + _UNPAIRED,
        "label",
    ),
    "kto_messages": Layout(
        "conversations labelled desirable or not, for KTO",
        "kto",
        "This file holds conversations labelled desirable (true) or undesirable (false) in 'label', unpaired "
        "preference (KTO) data" + _UNPAIRED,
        "label",
    ),
    "kto_tag": Layout(
        "LLaMA-Factory kto_tag data",
        "kto",
        "This file holds LLaMA-Factory KTO data: each row's reply is labelled desirable (true) or undesirable "
        "(false) in 'kto_tag'" + _UNPAIRED,
        "kto_tag",
    ),
    "stepwise": Layout(
        "stepwise supervision with a label per step",
        "prm",
        "This file holds stepwise supervision (a prompt, its solution steps in 'completions' and a label per step "
        "in 'labels'), which trains a process reward model (PRM). LoRA Studio runs supervised fine-tuning, which "
        "would learn the steps labelled wrong as good ones, so nothing was imported.",
    ),
    "segments": Layout(
        "Axolotl template-free segments",
        "sft",
        "This file holds Axolotl template-free segments (a list of texts, each with a 'label' saying whether it is "
        "trained on). LoRA Studio does not honour per-segment labels yet, and training on every segment would "
        "learn the ones labelled false, so nothing was imported.",
    ),
}


def recognise(row: dict[str, Any]) -> tuple[str, str | None] | None:
    """The layout of ``row`` and the field holding its conversation, if it is one of ``LAYOUTS``.

    Checked before the chat layouts, since these rows often carry a conversation too. A chat row that
    also keeps its pairs as message lists (UltraFeedback's SFT splits) is left to be read as the chat.
    """
    if "preferred_output" in row and "non_preferred_output" in row:
        return "preference_openai", "input"
    if isinstance(row.get("completions"), list) and isinstance(row.get("labels"), list):
        return "stepwise", None
    segments = row.get("segments")
    if isinstance(segments, list) and segments and isinstance(segments[0], dict) and "text" in segments[0]:
        return "segments", "segments"
    conversation = next((key for key in CONVERSATION_KEYS if _is_conversation(row.get(key))), None)
    if flag(row.get("kto_tag")) is not None:
        return "kto_tag", conversation
    if "chosen" in row and "rejected" in row:
        if conversation is None:
            explicit = any(key in row for key in PROMPT_KEYS)
            return ("preference" if explicit else "preference_implicit"), None
        if isinstance(row["chosen"], dict) and isinstance(row["rejected"], dict):
            return "preference_sharegpt", conversation
        return None
    if flag(row.get("label")) is not None:
        if conversation is not None:
            return "kto_messages", conversation
        if "completion" in row:
            return "kto", None
    return None


def flag(value: Any) -> bool | None:
    """A desirable/undesirable label: a JSON true/false, or the text a CSV or Excel cell holds (TRUE, false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower())
    return None


def _is_conversation(value: Any) -> bool:
    if isinstance(value, str) and value.startswith("["):
        value = json_list(value)
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)
