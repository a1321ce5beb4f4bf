"""Preference and labelled layouts: recognised, named, refused for SFT with the objective they need, and advice
that imports what it promises when it is followed.

The rows are written from each layout's public documentation: trl's dataset types (preference with explicit
and implicit prompt, unpaired preference, stepwise supervision; standard and conversational), OpenAI's
preference fine-tuning format, LLaMA-Factory's ranking and ``kto_tag`` data, Axolotl's template-free segments.
Following a suggestion is done here the way a person would (a column mapping, or the file edited as the
advice says), not with the code that made the suggestion.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from backend.data.formats import LABELS, detect
from backend.data.load import check_dataset, read_dataset
from backend.data.preference import LAYOUTS
from backend.data.scan import ImportOptions


def write(tmp_path: Path, rows: list[dict[str, Any]], name: str = "d.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def gpt(sender: str, value: str) -> dict[str, str]:
    return {"from": sender, "value": value}


PAIRED = (
    ", which trains with DPO, ORPO or SimPO (preference training: set training.objective to dpo, orpo or simpo). "
    "Supervised fine-tuning learns one answer per prompt: training on both answers would teach the rejected ones "
    "too, so nothing was imported for it."
)
UNPAIRED = (
    ", which trains with KTO (set training.objective to kto). Supervised fine-tuning would learn the undesirable "
    "ones as good answers, so nothing was imported for it."
)
PREFERRED = " To fine-tune on the preferred answers only, "
DESIRABLE = " To fine-tune on the desirable ones only, "

# trl: preference, standard, explicit prompt
TRL_PAIRS = [
    {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
    {"prompt": "The sun is", "chosen": " yellow.", "rejected": " purple."},
]
# trl: preference, conversational, explicit prompt
TRL_PAIRS_CHAT = [
    {
        "prompt": [msg("user", "What color is the sky?")],
        "chosen": [msg("assistant", "It is blue.")],
        "rejected": [msg("assistant", "It is green.")],
    },
    {
        "prompt": [msg("user", "What color is the sun?")],
        "chosen": [msg("assistant", "It is yellow.")],
        "rejected": [msg("assistant", "It is purple.")],
    },
]
# trl: preference, standard, implicit prompt (the prompt is the shared prefix)
TRL_IMPLICIT = [
    {"chosen": "The sky is blue.", "rejected": "The sky is green."},
    {"chosen": "The sun is yellow.", "rejected": "The sun is purple."},
]
# trl: preference, conversational, implicit prompt
TRL_IMPLICIT_CHAT = [
    {
        "chosen": [msg("user", "What color is the sky?"), msg("assistant", "It is blue.")],
        "rejected": [msg("user", "What color is the sky?"), msg("assistant", "It is green.")],
    },
    {
        "chosen": [msg("user", "What color is the sun?"), msg("assistant", "It is yellow.")],
        "rejected": [msg("user", "What color is the sun?"), msg("assistant", "It is purple.")],
    },
]
# LLaMA-Factory: Alpaca rows with ranking: true
ALPACA_RANKING = [
    {"instruction": "Name a colour", "input": "", "chosen": "Blue.", "rejected": "Sky."},
    {"instruction": "Translate", "input": "Hallo", "chosen": "Hello", "rejected": "Hall"},
]
# LLaMA-Factory: Alpaca ranking rows with history, which a column mapping would not read
ALPACA_RANKING_HISTORY = [
    {
        "instruction": "And in French?",
        "input": "",
        "chosen": "Bonjour",
        "rejected": "Hola",
        "history": [["Translate Hallo to English", "Hello"]],
    }
]
# LLaMA-Factory: ShareGPT rows with ranking: true (the conversation ends on the human turn)
SHAREGPT_RANKING = [
    {
        "conversations": [gpt("human", "What color is the sky?")],
        "chosen": gpt("gpt", "It is blue."),
        "rejected": gpt("gpt", "It is green."),
    },
    {
        "conversations": [gpt("human", "Hi"), gpt("gpt", "Hello!"), gpt("human", "What color is the sun?")],
        "chosen": gpt("gpt", "It is yellow."),
        "rejected": gpt("gpt", "It is purple."),
    },
]
# OpenAI: preference fine-tuning (DPO) JSONL
OPENAI_PREFERENCE = [
    {
        "input": {
            "messages": [msg("user", "Hello, can you tell me how cold San Francisco is today?")],
            "tools": [],
            "parallel_tool_calls": True,
        },
        "preferred_output": [msg("assistant", "Today in San Francisco, it is not quite cold as expected.")],
        "non_preferred_output": [msg("assistant", "It is not particularly cold in San Francisco today.")],
    },
    {
        "input": {"messages": [msg("system", "Be brief."), msg("user", "Is it raining in Paris?")]},
        "preferred_output": [msg("assistant", "No, it is dry.")],
        "non_preferred_output": [msg("assistant", "Weather is a complex system of...")],
    },
]
# trl: unpaired preference, standard
TRL_UNPAIRED = [
    {"prompt": "The sky is", "completion": " blue.", "label": True},
    {"prompt": "The sky is", "completion": " green.", "label": False},
    {"prompt": "The sun is", "completion": " yellow.", "label": True},
]
# trl: unpaired preference, conversational
TRL_UNPAIRED_CHAT = [
    {"prompt": [msg("user", "What color is the sky?")], "completion": [msg("assistant", "Blue.")], "label": True},
    {"prompt": [msg("user", "What color is the sky?")], "completion": [msg("assistant", "Green.")], "label": False},
    {"prompt": [msg("user", "What color is the sun?")], "completion": [msg("assistant", "Purple.")], "label": False},
]
# LLaMA-Factory: kto_tag on Alpaca rows
ALPACA_KTO = [
    {"instruction": "Name a colour", "input": "", "output": "Blue.", "kto_tag": True},
    {"instruction": "Name a colour", "input": "", "output": "Sky.", "kto_tag": False},
]
# LLaMA-Factory: kto_tag on ShareGPT rows
SHAREGPT_KTO = [
    {"conversations": [gpt("human", "Hi"), gpt("gpt", "Hello!")], "kto_tag": True},
    {"conversations": [gpt("human", "Hi"), gpt("gpt", "Go away.")], "kto_tag": False},
    {"conversations": [gpt("human", "Bye"), gpt("gpt", "Goodbye!")], "kto_tag": True},
]
# messages with a boolean label (issue 16's KTO-style data)
MESSAGES_KTO = [
    {"messages": [msg("user", "Hi"), msg("assistant", "Hello!")], "label": True},
    {"messages": [msg("user", "Hi"), msg("assistant", "Go away.")], "label": False},
]
# trl: stepwise supervision
STEPWISE = [
    {
        "prompt": "Which number is larger, 9.8 or 9.11?",
        "completions": [
            "The fractional part of 9.8 is 0.8, while the fractional part of 9.11 is 0.11.",
            "Since 0.11 is greater than 0.8, the number 9.11 is larger than 9.8.",
        ],
        "labels": [True, False],
    }
]
# Axolotl: type input_output (template-free)
SEGMENTS = [
    {
        "segments": [
            {"label": True, "text": "<s>Hello\n"},
            {"label": True, "text": "hi there!. "},
            {"label": False, "text": "goodbye "},
            {"label": True, "text": "farewell</s>"},
        ]
    }
]

CASES = {
    "trl-preference": (
        TRL_PAIRS,
        "preference",
        LAYOUTS["preference"].refusal
        + PREFERRED
        + "map the columns instruction = prompt, response = chosen (--map instruction=prompt --map response=chosen): "
        "that imports 2 of 2 rows.",
    ),
    "trl-preference-conversational": (
        TRL_PAIRS_CHAT,
        "preference",
        "This file holds preference pairs (a prompt with a chosen and a rejected answer)"
        + PAIRED
        + PREFERRED
        + "rename 'chosen' to 'completion' and delete 'rejected': that imports 2 of 2 rows as prompt/completion pairs.",
    ),
    "trl-implicit-prompt": (
        TRL_IMPLICIT,
        "preference_implicit",
        "This file holds preference pairs without a separate prompt ('chosen' and 'rejected' each hold the whole "
        "conversation)" + PAIRED,
    ),
    "trl-implicit-prompt-conversational": (
        TRL_IMPLICIT_CHAT,
        "preference_implicit",
        LAYOUTS["preference_implicit"].refusal
        + PREFERRED
        + "rename 'chosen' to 'messages' and delete 'rejected': that imports 2 of 2 rows as OpenAI/ChatML messages.",
    ),
    "llamafactory-alpaca-ranking": (
        ALPACA_RANKING,
        "preference",
        LAYOUTS["preference"].refusal
        + PREFERRED
        + "map the columns instruction = instruction, response = chosen, input = input "
        "(--map instruction=instruction --map response=chosen --map input=input): that imports 2 of 2 rows.",
    ),
    "llamafactory-alpaca-ranking-history": (
        ALPACA_RANKING_HISTORY,
        "preference",
        LAYOUTS["preference"].refusal
        + PREFERRED
        + "rename 'chosen' to 'output' and delete 'rejected': that imports 1 of 1 row as Alpaca instructions.",
    ),
    "llamafactory-sharegpt-ranking": (
        SHAREGPT_RANKING,
        "preference_sharegpt",
        "This file holds ShareGPT preference pairs (a conversation with a chosen and a rejected reply, as in "
        "LLaMA-Factory's ranking data)"
        + PAIRED
        + PREFERRED
        + "append 'chosen' to the end of 'conversations' and delete 'chosen' and 'rejected': that imports 2 of 2 "
        "rows as ShareGPT conversations.",
    ),
    "openai-preference": (
        OPENAI_PREFERENCE,
        "preference_openai",
        "This file holds OpenAI preference fine-tuning data (input messages with a preferred and a non-preferred "
        "output)"
        + PAIRED
        + PREFERRED
        + "write each row as 'messages' (the messages of 'input' followed by 'preferred_output') and 'tools' (those "
        "of 'input', if any), leaving out 'non_preferred_output': that imports 2 of 2 rows as OpenAI/ChatML messages.",
    ),
    "trl-unpaired": (
        TRL_UNPAIRED,
        "kto",
        "This file holds unpaired preference (KTO) data: completions labelled desirable (true) or undesirable "
        "(false) in 'label'"
        + UNPAIRED
        + DESIRABLE
        + "keep only the rows whose 'label' is true and delete the 'label' field: that imports 2 of 3 rows as "
        "prompt/completion pairs and leaves out 1 row labelled undesirable.",
    ),
    "trl-unpaired-conversational": (
        TRL_UNPAIRED_CHAT,
        "kto",
        LAYOUTS["kto"].refusal
        + DESIRABLE
        + "keep only the rows whose 'label' is true and delete the 'label' field: that imports 1 of 3 rows as "
        "prompt/completion pairs and leaves out 2 rows labelled undesirable.",
    ),
    "llamafactory-alpaca-kto-tag": (
        ALPACA_KTO,
        "kto_tag",
        "This file holds LLaMA-Factory KTO data: each row's reply is labelled desirable (true) or undesirable "
        "(false) in 'kto_tag'"
        + UNPAIRED
        + DESIRABLE
        + "keep only the rows whose 'kto_tag' is true and delete the 'kto_tag' field: that imports 1 of 2 rows as "
        "Alpaca instructions and leaves out 1 row labelled undesirable.",
    ),
    "llamafactory-sharegpt-kto-tag": (
        SHAREGPT_KTO,
        "kto_tag",
        LAYOUTS["kto_tag"].refusal
        + DESIRABLE
        + "keep only the rows whose 'kto_tag' is true and delete the 'kto_tag' field: that imports 2 of 3 rows as "
        "ShareGPT conversations and leaves out 1 row labelled undesirable.",
    ),
    "messages-with-label": (
        MESSAGES_KTO,
        "kto_messages",
        "This file holds conversations labelled desirable (true) or undesirable (false) in 'label', unpaired "
        "preference (KTO) data"
        + UNPAIRED
        + DESIRABLE
        + "keep only the rows whose 'label' is true and delete the 'label' field: that imports 1 of 2 rows as "
        "OpenAI/ChatML messages and leaves out 1 row labelled undesirable.",
    ),
    "trl-stepwise": (
        STEPWISE,
        "stepwise",
        "This file holds stepwise supervision (a prompt, its solution steps in 'completions' and a label per step "
        "in 'labels'), which trains a process reward model (PRM). LoRA Studio runs supervised fine-tuning, which "
        "would learn the steps labelled wrong as good ones, so nothing was imported.",
    ),
    "axolotl-segments": (
        SEGMENTS,
        "segments",
        "This file holds Axolotl template-free segments (a list of texts, each with a 'label' saying whether it is "
        "trained on). LoRA Studio does not honour per-segment labels yet, and training on every segment would "
        "learn the ones labelled false, so nothing was imported.",
    ),
}
OBJECTIVES = {
    "preference": "dpo/orpo",
    "preference_implicit": "dpo/orpo",
    "preference_sharegpt": "dpo/orpo",
    "preference_openai": "dpo/orpo",
    "kto": "kto",
    "kto_tag": "kto",
    "kto_messages": "kto",
    "stepwise": "prm",
    "segments": "sft",
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_layout_is_recognised_named_and_refused_with_the_objective_it_needs(tmp_path: Path, case: str) -> None:
    rows, fmt, message = CASES[case]
    detection = detect(rows)
    assert (detection.format, detection.objective) == (fmt, OBJECTIVES[fmt])
    report = check_dataset(write(tmp_path, rows))
    summary = report.files[0]
    assert (summary.format, summary.format_label) == (fmt, LABELS[fmt])
    assert report.rows == len(rows) and report.accepted == 0
    [problem] = report.problems.kept
    assert problem.code == "unsupported_format"
    assert problem.message == message


def follow(rows: list[dict[str, Any]], message: str) -> tuple[list[dict[str, Any]], ImportOptions]:
    """The rows and options after doing what ``message`` suggests, as a person would."""
    flags = re.findall(r"--map (\w+)=(\w+)", message)
    if flags:
        return rows, ImportOptions(columns=dict(flags))
    if field := re.search(r"keep only the rows whose '(\w+)' is true and delete", message):
        name = field[1]
        desirable = [r for r in rows if r[name] in (True, "TRUE", "true")]
        return [{k: v for k, v in r.items() if k != name} for r in desirable], ImportOptions()
    if renamed := re.search(r"rename 'chosen' to '(\w+)' and delete 'rejected'", message):
        edited = []
        for r in rows:
            kept = {k: v for k, v in r.items() if k not in ("chosen", "rejected")}
            edited.append({**kept, renamed[1]: r["chosen"]})
        return edited, ImportOptions()
    if "append 'chosen' to the end of 'conversations'" in message:
        return [{"conversations": [*r["conversations"], r["chosen"]]} for r in rows], ImportOptions()
    if "leaving out 'non_preferred_output'" in message:
        edited = []
        for r in rows:
            row = {"messages": r["input"]["messages"] + r["preferred_output"]}
            if r["input"].get("tools"):
                row["tools"] = r["input"]["tools"]
            edited.append(row)
        return edited, ImportOptions()
    raise AssertionError(f"a suggestion the test cannot follow: {message}")


@pytest.mark.parametrize("case", [case for case, (_, _, message) in CASES.items() if "that imports" in message])
def test_every_suggestion_imports_the_rows_it_promises_when_followed(tmp_path: Path, case: str) -> None:
    rows, _, message = CASES[case]
    promised = int(re.search(r"that imports (\d+) of", message)[1])  # type: ignore[index]
    edited, options = follow(rows, message)
    report = check_dataset(write(tmp_path, edited), options)
    assert report.accepted == promised and not report.problems.kept, report.problems.kept


def test_pairs_with_history_are_not_offered_a_mapping_that_would_drop_the_earlier_turns(tmp_path: Path) -> None:
    rows, _, message = CASES["llamafactory-alpaca-ranking-history"]
    assert "--map" not in message
    loaded = read_dataset(write(tmp_path, follow(rows, message)[0]))
    contents = [m["content"] for m in loaded.examples[0].messages]
    assert contents == ["Translate Hallo to English", "Hello", "And in French?", "Bonjour"]


def test_a_suggestion_counts_every_row_of_a_long_file_and_skips_rows_it_cannot_import(tmp_path: Path) -> None:
    rows = [{"prompt": f"q{i}", "completion": f"a{i}", "label": i % 3 == 0} for i in range(600)]
    rows[3]["completion"] = ""  # desirable, but empty: the import would refuse it
    message = check_dataset(write(tmp_path, rows)).problems.kept[0].message
    assert message.endswith(
        "that imports 199 of 600 rows as prompt/completion pairs and leaves out 400 rows labelled undesirable."
    )
    edited, options = follow(rows, message)
    assert check_dataset(write(tmp_path, edited), options).accepted == 199


def test_kto_labels_in_a_spreadsheet_are_recognised_too(tmp_path: Path) -> None:
    # the same unpaired rows exported from Excel: TRUE/FALSE are text in a CSV
    path = tmp_path / "kto.csv"
    path.write_text("prompt,completion,label\nThe sky is, blue.,TRUE\nThe sky is, green.,FALSE\n")
    report = check_dataset(path)
    assert report.files[0].format == "kto" and report.accepted == 0
    message = report.problems.kept[0].message
    assert message.endswith(
        "that imports 1 of 2 rows as prompt/completion pairs and leaves out 1 row labelled undesirable."
    )
    edited = tmp_path / "edited.csv"
    edited.write_text("prompt,completion\nThe sky is, blue.\n")
    assert check_dataset(edited).accepted == 1


def test_no_suggestion_is_made_when_none_imports_a_row(tmp_path: Path) -> None:
    rows = [{"prompt": "q", "completion": "a", "label": False}] * 2
    message = check_dataset(write(tmp_path, rows)).problems.kept[0].message
    assert message == LAYOUTS["kto"].refusal


@pytest.mark.parametrize(
    "options",
    [
        ImportOptions(format="prompt_completion"),
        ImportOptions(columns={"instruction": "prompt", "response": "completion"}),
    ],
    ids=["format-chosen", "columns-mapped"],
)
def test_the_kto_label_is_never_ignored_by_a_chosen_format_or_mapping(tmp_path: Path, options: ImportOptions) -> None:
    report = check_dataset(write(tmp_path, TRL_UNPAIRED), options)
    assert report.files[0].format == "kto" and report.accepted == 0
    assert (
        report.files[0].reason == "'label' is in all 3 rows looked at, and a chosen format or mapping would ignore it"
    )


def test_a_chat_file_that_keeps_its_pairs_too_is_read_as_the_chat(tmp_path: Path) -> None:
    # HuggingFaceH4/ultrafeedback_binarized, SFT splits: prompt, prompt_id, chosen, rejected, messages, scores
    row = {
        "prompt": "Hi",
        "prompt_id": "1",
        "chosen": [msg("user", "Hi"), msg("assistant", "Hello!")],
        "rejected": [msg("user", "Hi"), msg("assistant", "Go.")],
        "messages": [msg("user", "Hi"), msg("assistant", "Hello!")],
        "score_chosen": 8.0,
        "score_rejected": 2.0,
    }
    assert (detect([row]).format, detect([row]).objective) == ("messages", "sft")
