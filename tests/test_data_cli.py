"""``lora-studio data``: check, import, preview and list from a terminal, and the GUI's import constraint."""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backend.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from backend.cli.main import main
from tests.import_check import run_fresh

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = (REPO_ROOT / "docs" / "data-formats.md").read_text(encoding="utf-8")


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    rows = [{"instruction": f"Question {i}?", "output": f"Answer {i}."} for i in range(6)]
    lines = [json.dumps(r) for r in rows]
    lines.insert(2, '{"instruction": "no answer"}')
    lines.insert(4, "{broken")
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_check_prints_summary_problems_with_lines_and_writes_the_report(
    data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    assert main(["data", "check", str(data_file), "--report", str(report)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "d.jsonl: Alpaca instructions" in out and "6 of 8 rows usable" in out
    assert "d.jsonl line 3, field output: no 'output' field" in out
    assert "d.jsonl line 5: not valid JSON" in out
    assert "Only 6 usable examples" in out and f"report written to {report}" in out
    assert json.loads(report.read_text())["accepted"] == 6


def test_check_with_a_model_prints_token_statistics(data_file: Path, tiny_llama: Path, capsys) -> None:
    assert main(["data", "check", str(data_file), "--model", str(tiny_llama), "--max-length", "16"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"tokens ({tiny_llama}, max length 16)" in out and "tokens that carry loss" in out
    assert "longer than max length: 6 rows kept" in out


def test_check_json_output_and_format_override(data_file: Path, capsys) -> None:
    assert main(["data", "check", str(data_file), "--format", "messages", "--json"]) == EXIT_FAILED
    report = json.loads(capsys.readouterr().out)
    assert report["accepted"] == 0 and report["problem_counts"]["missing_field"] == 7


def test_mapping_on_the_command_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "t.csv"
    path.write_text("ticket,reply\nPrinter jams,Open tray B\n")
    assert main(["data", "check", str(path)]) == EXIT_FAILED
    assert "choose a format, or map the columns" in capsys.readouterr().out
    assert main(["data", "check", str(path), "--map", "instruction=ticket", "--map", "response=reply"]) == EXIT_OK
    assert main(["data", "check", str(path), "--map", "question=ticket"]) == EXIT_USAGE
    assert "--map takes ROLE=COLUMN" in capsys.readouterr().err


def test_import_stores_and_lists(data_file: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    assert main(["data", "import", str(data_file), "--name", "faq"]) == EXIT_OK
    out = capsys.readouterr().out
    stored = next(line.split(" in ", 1)[1] for line in out.splitlines() if line.startswith("stored 6 examples"))
    assert Path(stored).parent == tmp_path / "home" / "datasets" and "content hash" in out
    assert main(["data", "list"]) == EXIT_OK
    assert "faq" in capsys.readouterr().out


def test_preview_shows_the_example_as_the_model_sees_it(data_file: Path, tiny_llama: Path, capsys) -> None:
    assert main(["data", "preview", str(data_file), "2", "--model", str(tiny_llama)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "example 2 (d.jsonl line 2)" in out
    assert "<|im_start|>user\nQuestion 1?<|im_end|>" in out and "[[Answer 1.<|im_end|>" in out
    assert main(["data", "preview", str(data_file), "99", "--model", str(tiny_llama)]) == EXIT_USAGE


def test_preview_json_gives_the_text_its_loss_spans_and_the_cut(data_file: Path, tiny_llama: Path, capsys) -> None:
    assert main(["data", "preview", str(data_file), "2", "--model", str(tiny_llama), "--json"]) == EXIT_OK
    shown = json.loads(capsys.readouterr().out)
    assert (shown["example"], shown["file"], shown["line"], shown["where"]) == (2, "d.jsonl", 2, "d.jsonl line 2")
    [(start, end)] = shown["loss_spans"]
    assert shown["text"][start:end].startswith("Answer 1.<|im_end|>")
    assert 0 < shown["loss_tokens"] < shown["tokens"] and shown["cut_at"] is None
    assert (
        main(["data", "preview", str(data_file), "2", "--model", str(tiny_llama), "--json", "--max-length", "4"]) == 0
    )
    cut = json.loads(capsys.readouterr().out)
    assert 0 < cut["cut_at"] < len(cut["text"])


def test_preview_serve_reads_once_and_answers_each_example_asked_for(data_file: Path, tiny_llama: Path, capsys) -> None:
    """One process answers request after request, as ``--json`` would; a bad request gets an error line, not an exit."""
    assert main(["data", "preview", str(data_file), "2", "--model", str(tiny_llama), "--json"]) == EXIT_OK
    single_shot = json.loads(capsys.readouterr().out)
    serve = ["data", "preview", str(data_file), "--serve", "--model", str(tiny_llama)]
    # stderr is inherited: pytest shows it when the test fails.
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True, "cwd": REPO_ROOT}
    with subprocess.Popen([sys.executable, "-m", "backend.cli", *serve], **pipes) as server:

        def ask(request: str) -> dict:
            """Each answer is read before the next request is sent: the server answers as it goes."""
            server.stdin.write(request + "\n")
            server.stdin.flush()
            return json.loads(server.stdout.readline())

        assert json.loads(server.stdout.readline()) == {"v": 1, "ready": True, "examples": 6}
        assert ask("2") == single_shot
        assert ask("99") == {"v": 1, "example": 99, "error": "there are 6 usable examples; choose 1 to 6"}
        assert ask("two") == {"v": 1, "example": None, "error": "expected an example number, got 'two'"}
        first = ask("1")
        assert (first["example"], first["where"]) == (1, "d.jsonl line 1") and "Question 0?" in first["text"]
        last = ask("6")
        assert (last["example"], last["line"]) == (6, 8) and "Answer 5." in last["text"]
        server.stdin.close()  # EOF ends it
        assert server.wait(timeout=60) == EXIT_OK
    assert main(["data", "preview", str(data_file), "2", "--serve", "--model", str(tiny_llama)]) == EXIT_USAGE
    assert "give no N" in capsys.readouterr().err


def test_preview_serve_answers_an_error_of_any_kind_and_goes_on(
    tiny_llama: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """A template's own refusal (Gemma's refuses a system prompt) is jinja's error, not ours: answered, not fatal."""
    model = tmp_path / "model"
    shutil.copytree(tiny_llama, model)
    template = model / "chat_template.jinja"
    refuse = "{%- if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{%- endif %}"
    template.write_text(refuse + template.read_text())
    chat = [{"role": "user", "content": "Question?"}, {"role": "assistant", "content": "Answer."}]
    rows = [{"messages": chat}, {"messages": [{"role": "system", "content": "Be brief."}, *chat]}]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    monkeypatch.setattr(sys, "stdin", io.StringIO("2\n1\n"))
    assert main(["data", "preview", str(data), "--serve", "--model", str(model)]) == EXIT_OK
    out, err = capsys.readouterr()
    ready, refused, shown = map(json.loads, out.splitlines())
    assert ready == {"v": 1, "ready": True, "examples": 2}
    error = "the chat template or tokenizer failed on it (TemplateError: System role not supported)"
    assert refused == {"v": 1, "example": 2, "error": error}
    assert shown["example"] == 1 and "Question?" in shown["text"]
    assert "Traceback" in err, "what went wrong, for a bug report"


def usage(command: str) -> str:
    """docs/data-formats.md's usage lines for ``command``, "reading options" and "the options of check" spelled out."""
    block = re.search(r"```\n(lora-studio data .*?)```", DOCS, re.DOTALL)[1]
    reading = re.search(r"^reading options: (.*)$", block, re.MULTILINE)[1]
    lines = " ".join(line for line in block.splitlines() if line.split()[:3] == ["lora-studio", "data", command])
    lines = lines.replace("[reading options]", reading)
    return lines.replace("[the options of check]", usage("check")) if command != "check" else lines


@pytest.mark.parametrize("command", ["check", "import", "preview", "list"])
def test_the_usage_in_the_docs_names_every_option_help_lists(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["data", command, "--help"])
    listed = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", capsys.readouterr().out)) - {"--help"}
    assert set(re.findall(r"--[a-z][\w-]*", usage(command))) == listed


def test_under_json_a_model_import_reports_its_stages_on_stderr(capsys) -> None:
    """stdout holds one JSON document even when --model imports the default model first."""
    from backend.cli.data import _model_stages

    show = _model_stages(argparse.Namespace(json=True))
    show("converting", 5, 10)
    show("converting", 9, 10)
    out, err = capsys.readouterr()
    assert out == "" and err == "  model: converting\n"


def test_missing_file_is_an_error_not_a_traceback(tmp_path: Path, capsys) -> None:
    assert main(["data", "check", str(tmp_path / "nope.jsonl")]) == EXIT_FAILED
    assert "does not exist" in capsys.readouterr().err


def test_data_modules_import_without_the_ml_stack() -> None:
    """The GUI reads, validates and stores datasets in its own process; only tokens.py's functions load transformers."""
    modules = sorted(p.stem for p in (REPO_ROOT / "backend" / "data").glob("*.py") if p.stem != "__init__")
    code = f"import importlib; [importlib.import_module('backend.data.' + m) for m in {modules!r}]"
    assert "tokens" in modules and "store" in modules
    assert run_fresh(code).loaded == []


def test_preview_shows_the_tools_as_the_template_renders_them(tmp_path: Path, tiny_llama: Path, capsys) -> None:
    from tests.tiny_models import TOOLS_TEMPLATE, build_tiny_model

    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    rows = [
        {
            "messages": [
                {"role": "user", "content": "Weather in Oslo?"},
                {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "content": "5 C"},
                {"role": "assistant", "content": "It is 5 C."},
            ],
            "tools": [weather],
        },
        {
            "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
            "tools": [weather],
        },
    ]
    path = tmp_path / "tools.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    model = build_tiny_model("qwen2", tmp_path / "model", chat_template=TOOLS_TEMPLATE)

    assert main(["data", "preview", str(path), "1", "--model", str(model)]) == EXIT_OK
    out = capsys.readouterr().out
    assert '# Tools\n<tools>{"type": "function", "function": {"name": "get_weather", "parameters":' in out
    assert '[[<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call><|im_end|>' in out
    assert "<tool_response>\n5 C\n</tool_response>" in out and "[[It is 5 C.<|im_end|>" in out
    assert "note:" not in out

    assert main(["data", "preview", str(path), "2", "--model", str(tiny_llama)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "get_weather" not in out
    assert (
        "note: This example has tool definitions, but this model's chat template does not show tools, so the model "
        "will not see them; choose a model whose template supports tools." in out
    )
