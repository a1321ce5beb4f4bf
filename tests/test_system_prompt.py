"""A chat template's own system prompt: found by rendering, told in the preview and the check, set or suppressed
per job with ``data.system_prompt``, applied where training tokenizes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from backend.cli.common import EXIT_OK
from backend.cli.main import main
from backend.core.events import EventSink
from backend.core.spec import Data
from backend.data.chat_tokens import template_system_prompt
from backend.data.load import load_training_data
from backend.data.preview_protocol import ExamplePreview, parse_preview_line, preview_json
from backend.data.tokens import tokenize_example
from tests.tiny_models import CHATML_TEMPLATE, GEMMA_TEMPLATE

REPO_ROOT = Path(__file__).resolve().parent.parent
QWEN = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
QWEN_TEMPLATE = (  # Qwen2.5's template without its tools branch
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\n" + QWEN + "<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SMOLLM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
SMOLLM2_TEMPLATE = (  # HuggingFaceTB/SmolLM2-135M-Instruct's chat_template.jinja, as published
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    + SMOLLM
    + "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
STUBBORN_TEMPLATE = (  # adds its own unless the system prompt has text
    "{%- if messages[0]['role'] == 'system' and messages[0]['content'] %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nBe helpful.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if message.role != 'system' %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
CHAT = [{"role": "user", "content": "What colour is the sky?"}, {"role": "assistant", "content": "Blue."}]
NOTICE = f"This model's chat template adds its own system prompt to examples that have none: '{QWEN}'."


class Collect(EventSink):
    def __init__(self) -> None:
        super().__init__(None, None)
        self.events: list = []

    def emit(self, event) -> None:
        self.events.append(event)


def tokenizer_with(tiny_llama: Path, template: str):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.chat_template = template
    return tokenizer


@pytest.fixture(scope="module")
def qwen_like(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model folder whose tokenizer has Qwen2.5's template."""
    folder = tmp_path_factory.mktemp("qwen_like") / "model"
    shutil.copytree(tiny_llama, folder)
    tokenizer_with(tiny_llama, QWEN_TEMPLATE).save_pretrained(folder)
    return folder


@pytest.fixture
def chats(tmp_path: Path) -> Path:
    """Two conversations without a system message, one with its own."""
    own = [{"role": "system", "content": "Answer in one word."}, *CHAT]
    path = tmp_path / "chats.jsonl"
    path.write_text(
        "".join(json.dumps({"messages": m}) + "\n" for m in (CHAT, [*CHAT[:1], CHAT[1] | {"content": "Azure."}], own))
    )
    return path


@pytest.mark.parametrize(
    ("template", "text", "suppressible"),
    [(QWEN_TEMPLATE, QWEN, True), (SMOLLM2_TEMPLATE, SMOLLM, True), (STUBBORN_TEMPLATE, "Be helpful.", False)],
    ids=["qwen2.5", "smollm2", "ignores-empty"],
)
def test_the_templates_own_system_prompt_is_found_by_rendering(
    tiny_llama: Path, template: str, text: str, suppressible: bool
) -> None:
    found = template_system_prompt(tokenizer_with(tiny_llama, template))
    assert found is not None and (found.text, found.suppressible) == (text, suppressible)
    if suppressible:
        assert found.notice() == (
            f"This model's chat template adds its own system prompt to examples that have none: '{text}'. "
            'Set data.system_prompt to your own text, or to "" for none.'
        )
    else:
        assert "It adds it even when the system prompt is empty" in found.notice()


@pytest.mark.parametrize("template", [CHATML_TEMPLATE, GEMMA_TEMPLATE], ids=["chatml", "gemma-no-system-role"])
def test_templates_that_add_none_are_not_flagged(tiny_llama: Path, template: str) -> None:
    assert template_system_prompt(tokenizer_with(tiny_llama, template)) is None


@pytest.mark.parametrize(
    ("system_prompt", "shown"), [(None, QWEN), ("", None), ("Answer like a pirate.", "Answer like a pirate.")]
)
def test_training_tokenizes_with_the_jobs_system_prompt(
    tiny_llama: Path, chats: Path, system_prompt: str | None, shown: str | None
) -> None:
    """data.system_prompt reaches the examples training tokenizes (train and held out); an example's own stays."""
    tokenizer = tokenizer_with(tiny_llama, QWEN_TEMPLATE)
    train, held, _ = load_training_data(Data(path=str(chats), eval_split=0.34, system_prompt=system_prompt), Collect())
    assert len(train) == 2 and len(held) == 1
    texts = [tokenize_example(tokenizer, e).text for e in [*train, *held]]
    own = [t for t in texts if "Answer in one word." in t]
    assert len(own) == 1 and QWEN not in own[0] and "pirate" not in own[0]
    for text in (t for t in texts if t not in own):
        assert (QWEN in text) == (shown == QWEN)
        assert text.startswith(f"<|im_start|>system\n{shown or ''}<|im_end|>\n<|im_start|>user\n")


def test_preview_tells_the_user_and_the_system_prompt_option_changes_it(
    qwen_like: Path, chats: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "preview", str(chats), "1", "--model", str(qwen_like)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f'note: {NOTICE} Set data.system_prompt to your own text, or to "" for none.' in out and QWEN in out
    assert main(["data", "preview", str(chats), "1", "--model", str(qwen_like), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["notices"] == [
        f'{NOTICE} Set data.system_prompt to your own text, or to "" for none.'
    ]
    for given in ("", "Be brief."):
        argv = ["data", "preview", str(chats), "1", "--model", str(qwen_like), "--json", "--system-prompt", given]
        assert main(argv) == EXIT_OK
        shown = json.loads(capsys.readouterr().out)
        assert shown["notices"] == [] and QWEN not in shown["text"]
        assert shown["text"].startswith(f"<|im_start|>system\n{given}<|im_end|>\n")
    assert main(["data", "preview", str(chats), "3", "--model", str(qwen_like), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["notices"] == []  # it has its own system message


def test_the_preview_server_answers_with_the_notice(qwen_like: Path, chats: Path) -> None:
    serve = [sys.executable, "-m", "backend.cli", "data", "preview", str(chats), "--serve", "--model", str(qwen_like)]
    done = subprocess.run(serve, input="1\n3\n", capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    ready, first, third = (json.loads(line) for line in done.stdout.splitlines())
    assert ready["examples"] == 3
    assert first["notices"][0].startswith(NOTICE) and third["notices"] == []


def test_check_with_a_model_counts_the_examples_it_is_added_to(qwen_like: Path, chats: Path, capsys) -> None:
    assert main(["data", "check", str(chats), "--model", str(qwen_like)]) == EXIT_OK
    assert f"2 examples without a system prompt: {NOTICE}" in capsys.readouterr().out


def test_a_preview_line_without_notices_reads_as_none() -> None:
    """notices is an optional field within version 1: lines from before it parse, and it round-trips."""
    line = {"v": 1, "example": 1, "file": "d.jsonl", "where": "d.jsonl line 1", "text": "x", "loss_spans": []}
    older = parse_preview_line(json.dumps(line | {"tokens": 1, "loss_tokens": 0}))
    assert isinstance(older, ExamplePreview) and older.notices == []
    newer = older.model_copy(update={"notices": [NOTICE]})
    assert parse_preview_line(preview_json(newer)) == newer


def test_the_training_job_tokenizes_the_system_prompt_it_was_given(tiny_llama: Path, chats: Path) -> None:
    """What SFT feeds the trainer: the spec's data.system_prompt is in the ids, outside the loss."""
    from backend.core.spec import JobSpec
    from backend.data.chat_tokens import IGNORE
    from backend.training.sft import _tokenize

    tokenizer = tokenizer_with(tiny_llama, QWEN_TEMPLATE)
    spec = JobSpec.from_dict({"data": {"path": str(chats), "eval_split": 0.0, "system_prompt": "Talk like a pirate."}})
    train, _, _ = load_training_data(spec.data, Collect())
    dataset = _tokenize(tokenizer, train, spec, "train", Collect())
    texts = [tokenizer.decode(row["input_ids"]) for row in dataset]
    assert sum("Talk like a pirate." in t for t in texts) == 2 and not any(QWEN in t for t in texts)
    for row in dataset:
        learned = tokenizer.decode(
            [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != IGNORE]
        )
        assert "pirate" not in learned and "Answer in one word" not in learned


def test_check_counts_tokens_with_the_system_prompt_given(qwen_like: Path, chats: Path, capsys) -> None:
    """--system-prompt "" leaves no example to the template's own; text lengthens every example without one."""
    report = {}
    for given in (None, "", "Talk like a pirate, always, in every reply you write."):
        argv = ["data", "check", str(chats), "--model", str(qwen_like), "--json"]
        assert main(argv + ([] if given is None else ["--system-prompt", given])) == EXIT_OK
        report[given] = json.loads(capsys.readouterr().out)["tokens"]
    default, empty, pirate = report.values()
    assert (default["without_system"], empty["without_system"], pirate["without_system"]) == (2, 0, 0)
    assert empty["template_system_prompt"] == "" and default["template_system_prompt"].startswith(NOTICE)
    assert empty["total"] < default["total"] and pirate["total"] > empty["total"]
