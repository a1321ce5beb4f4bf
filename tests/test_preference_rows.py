"""Preference data read for its trainers: every recognised layout becomes trl's rows, and what cannot be
trained with the job's objective is refused with what to do instead (the spec's side: test_preference_spec.py).

The rows are the public layouts of ``tests/test_data_preference.py``; the SFT side (such files refused for
supervised fine-tuning, KTO's undesirable rows left out and counted) is checked there and once more here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backend.data.load import check_dataset
from backend.data.preference_rows import counts, flatten, read_preferences
from backend.data.problems import DataError
from tests import test_data_preference as layouts


def write(tmp_path: Path, rows: list[Any], name: str = "d.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


PAIRS = {
    "trl": (
        layouts.TRL_PAIRS,
        {"prompt": user("The sky is"), "chosen": assistant(" blue."), "rejected": assistant(" green.")},
    ),
    "trl-conversational": (
        layouts.TRL_PAIRS_CHAT,
        {
            "prompt": user("What color is the sky?"),
            "chosen": assistant("It is blue."),
            "rejected": assistant("It is green."),
        },
    ),
    "trl-implicit": (
        layouts.TRL_IMPLICIT,
        {"prompt": user("The sky is"), "chosen": assistant("blue."), "rejected": assistant("green.")},
    ),
    "trl-implicit-conversational": (
        layouts.TRL_IMPLICIT_CHAT,
        {
            "prompt": user("What color is the sky?"),
            "chosen": assistant("It is blue."),
            "rejected": assistant("It is green."),
        },
    ),
    "alpaca-ranking": (
        layouts.ALPACA_RANKING,
        {"prompt": user("Name a colour"), "chosen": assistant("Blue."), "rejected": assistant("Sky.")},
    ),
    "alpaca-ranking-history": (
        layouts.ALPACA_RANKING_HISTORY,
        {
            "prompt": [*user("Translate Hallo to English"), *assistant("Hello"), *user("And in French?")],
            "chosen": assistant("Bonjour"),
            "rejected": assistant("Hola"),
        },
    ),
    "sharegpt-ranking": (
        layouts.SHAREGPT_RANKING,
        {
            "prompt": user("What color is the sky?"),
            "chosen": assistant("It is blue."),
            "rejected": assistant("It is green."),
        },
    ),
}


@pytest.mark.parametrize("case", PAIRS, ids=list(PAIRS))
def test_every_paired_layout_becomes_prompt_chosen_rejected(tmp_path: Path, case: str) -> None:
    rows, first = PAIRS[case]
    data = read_preferences(write(tmp_path, rows), "dpo")
    assert flatten(data.records)[0] == first
    assert len(data.records) == len(rows) and not data.problems


def test_openai_preference_data_keeps_its_system_prompt(tmp_path: Path) -> None:
    data = read_preferences(write(tmp_path, layouts.OPENAI_PREFERENCE), "orpo")
    row = flatten(data.records)[0]
    assert row["prompt"][-1]["role"] == "user"
    assert row["chosen"] == assistant("Today in San Francisco, it is not quite cold as expected.")
    assert row["rejected"][0]["role"] == "assistant" and row["rejected"] != row["chosen"]


@pytest.mark.parametrize(
    ("rows", "label_field"),
    [
        (layouts.TRL_UNPAIRED, "label"),
        (layouts.TRL_UNPAIRED_CHAT, "label"),
        (layouts.MESSAGES_KTO, "label"),
        (layouts.ALPACA_KTO, "kto_tag"),
        (layouts.SHAREGPT_KTO, "kto_tag"),
    ],
    ids=["trl", "trl-conversational", "messages", "alpaca-kto-tag", "sharegpt-kto-tag"],
)
def test_kto_honours_each_rows_label(tmp_path: Path, rows: list[dict[str, Any]], label_field: str) -> None:
    data = read_preferences(write(tmp_path, rows), "kto")
    out = flatten(data.records)
    assert [row["label"] for row in out] == [row[label_field] for row in rows]
    assert all(row["completion"][-1]["role"] == "assistant" and row["prompt"][0]["role"] != "assistant" for row in out)


def test_pairs_train_kto_as_one_desirable_and_one_undesirable_answer(tmp_path: Path) -> None:
    data = read_preferences(write(tmp_path, layouts.TRL_PAIRS_CHAT), "kto")
    assert data.records[0] == [
        {"prompt": user("What color is the sky?"), "completion": assistant("It is blue."), "label": True},
        {"prompt": user("What color is the sky?"), "completion": assistant("It is green."), "label": False},
    ]
    assert counts(data.records) == (2, 2)
    # Split by source row: both answers to one prompt stay on the same side.
    train, held = data.split(0.5, 0)
    assert len(train) == len(held) == 1 and all(len(record) == 2 for record in train + held)


def test_labelled_single_answers_cannot_train_dpo(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        read_preferences(write(tmp_path, layouts.TRL_UNPAIRED), "dpo")
    assert str(caught.value) == (
        "d.jsonl holds prompt/completion/label KTO data: single answers labelled desirable or undesirable, not "
        "pairs. training.objective dpo compares a chosen and a rejected answer to the same prompt; set "
        "training.objective to kto, which learns from labelled answers."
    )


def test_chat_data_is_refused_with_the_objective_that_trains_it(tmp_path: Path) -> None:
    rows = [{"messages": [*user("Hi"), *assistant("Hello!")]}]
    with pytest.raises(DataError) as caught:
        read_preferences(write(tmp_path, rows), "simpo")
    assert str(caught.value) == (
        "d.jsonl holds OpenAI/ChatML messages, one answer per prompt; training.objective simpo learns from "
        "preference pairs: a prompt with a chosen and a rejected answer (the layouts are in docs/data-formats.md). "
        "To fine-tune on these answers, set training.objective to sft."
    )


def test_stepwise_data_trains_no_objective_yet(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds stepwise supervision with a label per step, which no LoRA Studio"):
        read_preferences(write(tmp_path, layouts.STEPWISE), "kto")


def test_unusable_rows_are_left_out_with_their_place_and_reason(tmp_path: Path) -> None:
    rows = [
        *layouts.TRL_PAIRS_CHAT,
        {"prompt": user("Same?"), "chosen": assistant("Yes."), "rejected": assistant("Yes.")},
        {"prompt": user("Not a pair"), "completion": assistant("x"), "label": "maybe"},
        {"prompt": user("Who?"), "chosen": [{"role": "wizard", "content": "Me."}], "rejected": assistant("You.")},
    ]
    data = read_preferences(write(tmp_path, rows), "dpo")
    assert len(data.records) == 2 and data.rows == 5
    assert data.problems == [
        "d.jsonl line 3: 'chosen' and 'rejected' are the same, so there is no preference to learn",
        "d.jsonl line 4: no 'chosen' answer",
        "d.jsonl line 5: message 2 has role 'wizard'; use system, user, assistant or tool (or human, gpt, model, "
        "function_call, observation)",
    ]


def test_an_answer_marked_not_learned_is_refused_not_trained_whole(tmp_path: Path) -> None:
    rows = [
        *layouts.TRL_PAIRS_CHAT,
        {
            "prompt": [*user("Colour?"), *assistant("Of what?"), *user("The sky.")],
            "chosen": [{"role": "assistant", "content": "Blue.", "weight": 0}],
            "rejected": assistant("Green."),
        },
    ]
    data = read_preferences(write(tmp_path, rows), "dpo")
    assert data.problems == [
        "d.jsonl line 3: message 4 marks part of the answer as not learned; preference training compares whole "
        "answers, so remove the flag or the message"
    ]


def test_with_objective_sft_a_kto_file_still_leaves_out_its_undesirable_rows(tmp_path: Path) -> None:
    report = check_dataset(write(tmp_path, layouts.TRL_UNPAIRED))
    assert report.accepted == 0 and report.files[0].format == "kto"
    message = report.problems.kept[0].message
    assert "would learn the undesirable ones as good answers" in message
    assert message.endswith(
        "that imports 2 of 3 rows as prompt/completion pairs and leaves out 1 row labelled undesirable."
    )
