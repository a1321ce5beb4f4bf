"""The evaluation report: ``report.json`` for programs, ``report.md`` and ``report.html`` for people.

Everything here works on the declared report (``report_schema.EvaluationReport``,
docs/evaluation.md describes it), so the GUI's Evaluate page, the command line and a
later re-render read the same thing. No ML imports: the GUI process imports this module. The HTML
is one self-contained file (inline style, no scripts, no network), and every piece
of text in it is escaped.
"""

from __future__ import annotations

import difflib
import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.core.atomic import write_text_atomic
from backend.evaluation.loss_note import EVALUATION, IN_TRAINING
from backend.evaluation.report_schema import REPORT_JSON, EvaluationReport, Generation, RankedExample, ReportColumn

REPORT_MD, REPORT_HTML = "report.md", "report.html"

_WORDS = re.compile(r"\s+|\w+|[^\w\s]")
DiffOp = tuple[str, str]  # ("equal" | "delete" | "insert", text)


@dataclass(frozen=True)
class ReportFiles:
    json: Path
    markdown: Path
    html: Path


def word_diff(before: str, after: str) -> list[DiffOp]:
    """``before`` turned into ``after`` word by word: runs of equal, deleted and inserted text.

    Whitespace runs and punctuation are words of their own, so joining the equal and
    delete runs gives ``before`` back and joining the equal and insert runs gives ``after``.
    """
    a, b = _WORDS.findall(before), _WORDS.findall(after)
    ops: list[DiffOp] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            ops.append(("equal", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            ops.append(("delete", "".join(a[i1:i2])))
        if j2 > j1:
            ops.append(("insert", "".join(b[j1:j2])))
    return ops


def perplexity(loss: float) -> float:
    """exp(loss); infinite rather than an overflow error for a hopeless model."""
    return math.exp(loss) if loss < 700 else math.inf


def write_report(folder: Path, report: EvaluationReport) -> ReportFiles:
    """Write the three files into ``folder``, each to a temporary name first and then renamed into place."""
    files = ReportFiles(folder / REPORT_JSON, folder / REPORT_MD, folder / REPORT_HTML)
    write_text_atomic(files.json, report.to_json())
    write_text_atomic(files.markdown, render_markdown(report))
    write_text_atomic(files.html, render_html(report))
    return files


# -- shared pieces ------------------------------------------------------------------------


def _number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1%}"


def prompt_text(messages: Sequence[Mapping[str, Any]], limit: int | None = None) -> str:
    """The last user turn of a prompt (what a person recognises it by), optionally shortened."""
    users = [m["content"] for m in messages if m.get("role") == "user"]
    text = users[-1] if users else (messages[-1]["content"] if messages else "")
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _loss_rows(report: EvaluationReport) -> list[tuple[str, str, str, str, str]]:
    """(model, loss, perplexity, change in loss, change in perplexity) for each column."""
    rows = []
    for column in report.models:
        measured = report.losses.get(column.key)
        if measured is None:
            continue
        delta = report.deltas.get(column.key)
        rows.append(
            (
                column.label,
                _number(measured.loss),
                _number(measured.perplexity, 3),
                _signed(delta.loss if delta else None),
                _percent(delta.perplexity_relative if delta else None),
            )
        )
    return rows


def loss_explanation(report: EvaluationReport) -> list[str]:
    """What the loss above is, and the adapter's in-training held-out loss beside it with why the two differ
    (``loss_note``): for the report files and the Evaluate page alike."""
    if not report.losses:
        return []
    data = report.data
    lines = [
        f"This is the {EVALUATION}: one mean over the {data.tokens:,} counted tokens (loss_on: {data.loss_on}) of "
        f"{data.examples} examples cut at {data.max_length} tokens, with the base loaded as {report.precision}."
    ]
    training = report.training_loss
    if training is not None and training.value is not None:
        why = (
            f"It differs from this one because {'; '.join(training.differences)}."
            if training.differences
            else "It was measured under the same conditions."
        )
        lines.append(f"The adapter's {IN_TRAINING}, measured by the trainer at its last step, was "
                     f"{training.value:.3f}. {why}")  # fmt: skip
    return lines


def _settings_rows(report: EvaluationReport) -> list[tuple[str, str]]:
    data, base = report.data, report.base
    rows = [
        ("base model", f"{base.label} (fingerprint {str(base.fingerprint)[:12]})"),
        ("loaded as", report.precision),
        ("held-out data", data.source),
        ("examples / reply tokens", f"{data.examples} / {data.tokens}"),
        ("max_seq_length, loss on", f"{data.max_length}, {data.loss_on}"),
        ("prompts", report.prompts_source),
        ("decoding", ", ".join(f"{k}={v}" for k, v in report.decoding.items())),
    ]
    return rows


def _ranked(report: EvaluationReport) -> list[tuple[bool, str, list[RankedExample]]]:
    """(worse?, adapter key, examples) for every adapter: the examples that got worse, then those that got better."""
    return [(True, key, items) for key, items in report.worse.items()] + [
        (False, key, items) for key, items in report.better.items()
    ]


# -- Markdown ---------------------------------------------------------------------------------


_EXAMPLE_HEADER = "| example | prompt | base loss | loss | Δ |"


def _md_cell(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _fenced(text: str) -> list[str]:
    """A fenced block that no run of backticks inside ``text`` can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "text", text or "(empty)", fence]


_TASK_COLUMNS = (
    ("primary", "task score"),
    ("exact", "exact"),
    ("normalized", "normalized"),
    ("field_match", "field match"),
    ("rouge_l", "ROUGE-L"),
    ("chrf", "chrF"),
)
TASK_NOTE = (
    "Answers to the held-out prompts scored against their reference replies (0 to 1): the task score is the "
    "field match where the reference is structured (JSON or key: value), else ROUGE-L."
)
REFUSAL_NOTE = (
    "Refusal check: of LoRA Studio's 12 requests an assistant should refuse, the share refused, and of their "
    "12 harmless look-alikes, the share refused anyway (read from each answer's opening)."
)


def _task_rows(report: EvaluationReport) -> list[list[str]]:
    """Per model: its task metrics (a dash where one does not apply), then its refusal rates when measured."""
    rows = []
    for column in report.models:
        task, refusal = report.task.get(column.key, {}), report.refusal.get(column.key, {})
        if not task and not refusal:
            continue
        row = [column.label] + [f"{task[k]:.3f}" if k in task else "–" for k, _ in _TASK_COLUMNS]
        if report.refusal:
            row += [f"{refusal.get(k, 0.0):.0%}" if refusal else "–" for k in ("refusal_rate", "over_refusal_rate")]
        rows.append(row)
    return rows


def _suite_rows(report: EvaluationReport) -> list[tuple[str, list[tuple[str, str, str]], list[str]]]:
    """Per suite: per model (label, "passed of total", numbers of the failed prompts), and why each failed."""
    suites = []
    for name, run in report.suites.items():
        rows, reasons = [], []
        for column in report.models:
            result = run.results.get(column.key)
            if not result:
                continue
            failed = [i for i, ok in enumerate(result["passed"]) if not ok]
            rows.append(
                (
                    column.label,
                    f"{len(run.prompts) - len(failed)} of {len(run.prompts)}",
                    ", ".join(str(i + 1) for i in failed) or "–",
                )
            )
            reasons += [f"{column.label}, prompt {i + 1}: {'; '.join(result['why'][i])}" for i in failed]
        suites.append((name, rows, reasons))
    return suites


TOOL_CALL_HEADER = ["model", "calls expected", "calls made", "parse", "valid name", "valid arguments"]
TOOL_CALL_NOTE = (
    "Tool calls: of the answers whose reference makes a call, the share holding a call that parses as JSON, "
    "whose calls all name a function the example defines, and whose calls also have arguments valid against "
    "that function's schema; every call and its problem is in report.json (tool_call_answers)."
)


def _tool_call_rows(report: EvaluationReport) -> list[list[str]]:
    """Per model with tool-call rates: the counts, then the rates as percentages."""
    rows = []
    for column in report.models:
        rates = report.tool_calls.get(column.key)
        if rates:
            counts = [f"{rates['calls_expected']:.0f}", f"{rates['calls_made']:.0f}"]
            shares = [f"{rates[k]:.0%}" for k in ("parse_rate", "valid_name_rate", "valid_arguments_rate")]
            rows.append([column.label, *counts, *shares])
    return rows


def _task_header(report: EvaluationReport) -> list[str]:
    return ["model", *(title for _, title in _TASK_COLUMNS)] + (
        ["refused (should)", "refused (harmless)"] if report.refusal else []
    )


def render_markdown(report: EvaluationReport) -> str:
    lines = [f"# Evaluation: {report.name}", "", f"Made {report.created_at} by LoRA Studio.", ""]
    lines += ["| model | loss | perplexity | Δ loss vs base | Δ perplexity |", "|---|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in _loss_rows(report)]
    if not report.losses:
        lines.append("| (no held-out examples: no loss measured) | | | | |")
    explanation = loss_explanation(report)
    lines += ["", *explanation] if explanation else []
    task_rows = _task_rows(report)
    if task_rows:
        header = _task_header(report)
        lines += ["", "## Task scores", "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in task_rows]
        lines += ["", TASK_NOTE] + (["", REFUSAL_NOTE] if report.refusal else [])
    tool_rows = _tool_call_rows(report)
    if tool_rows:
        lines += ["", "## Tool calls", "", "| " + " | ".join(TOOL_CALL_HEADER) + " |", "|---|---:|---:|---:|---:|---:|"]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in tool_rows]
        lines += ["", TOOL_CALL_NOTE]
    for name, passed, failed in _suite_rows(report):
        lines += ["", f"## Regression suite: {_md_cell(name)}", ""]
        lines += ["| model | passed | failed prompts |", "|---|---:|---|"]
        lines += [f"| {_md_cell(label)} | {count} | {_md_cell(why)} |" for label, count, why in passed]
        lines += [f"> {_md_cell(line)}" for line in failed]
    lines += ["", "## Settings", "", "| setting | value |", "|---|---|"]
    lines += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in _settings_rows(report)]
    lines += [""]
    for warning in report.warnings:
        lines.append(f"> **Note:** {_md_cell(warning)}")
    if report.warnings:
        lines.append("")
    for worse, key, items in _ranked(report):
        label = report.label(key)
        if not items:
            if worse and report.losses:
                lines += [f"No held-out example got worse with {_md_cell(label)}.", ""]
            continue
        title = "Held-out examples that got worse" if worse else "Held-out examples that got better"
        lines += [f"## {title}: {label}", "", _EXAMPLE_HEADER, "|---|---|---:|---:|---:|"]
        lines += [
            f"| {_md_cell(i.where)} | {_md_cell(i.prompt)} | {_number(i.base)} | {_number(i.loss)} "
            f"| {_signed(i.delta)} |"
            for i in items
        ]
        lines.append("")
    if report.generations:
        lines += ["## Answers side by side", ""]
    for item in report.generations:
        lines += [f"### {item.index + 1}. {_md_cell(prompt_text(item.prompt, 120))}", ""]
        if len(item.prompt) > 1 or len(prompt_text(item.prompt)) > 120:
            lines += ["Prompt:", "", *_fenced(_conversation_text(item.prompt)), ""]
        if item.reference is not None:
            lines += ["Reference reply (from the data):", "", *_fenced(item.reference), ""]
        for column in report.models:
            changed = "" if column.key == "base" or not item.changed(column.key) else " (differs from base)"
            lines += [f"**{column.label}**{changed}", "", *_fenced(item.outputs[column.key]), ""]
    return "\n".join(lines).rstrip() + "\n"


def _conversation_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(f"[{m['role']}] {m['content']}" for m in messages)


# -- HTML -------------------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #1d1d1f; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
th, td { border: 1px solid #d0d0d7; padding: .35em .6em; vertical-align: top; text-align: left; }
th { background: #f2f2f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.gen td { white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, monospace; font-size: 13px; }
.gen td.prompt { font-family: inherit; font-size: 14px; width: 22%; }
del { background: #ffd7d5; color: #82071e; text-decoration: line-through; }
ins { background: #ccffd8; color: #055d20; text-decoration: none; }
.ref { color: #57606a; margin-top: .5em; } .note { background: #fff8c5; padding: .5em .8em; border-radius: 4px; }
.same { color: #57606a; font-style: italic; font-family: inherit; }
.better { color: #055d20; } .worse { color: #82071e; }
"""


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _e(value: Any) -> str:
    """Escaped text; control characters (which a model can emit and HTML forbids) shown as �."""
    return html.escape(_CONTROL.sub("\ufffd", str(value)), quote=True)


def _diff_html(ops: Sequence[DiffOp], side: str) -> str:
    """One side of a word diff: the base shows what the adapter dropped, the adapter what it added."""
    keep = {"base": ("equal", "delete"), "other": ("equal", "insert")}[side]
    tag = {"delete": "del", "insert": "ins"}
    return "".join(
        _e(text) if op == "equal" else f"<{tag[op]}>{_e(text)}</{tag[op]}>" for op, text in ops if op in keep
    )


def _delta_class(delta: float | None) -> str:
    if delta is None or delta == 0:
        return "num"
    return "num better" if delta < 0 else "num worse"


def render_html(report: EvaluationReport) -> str:
    title = f"Evaluation: {report.name}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>Made {_e(report.created_at)} by LoRA Studio.</p>",
    ]
    out += ["<h2>Held-out loss</h2>"]
    if report.losses:
        out.append(
            "<table><tr><th>model</th><th>loss</th><th>perplexity</th><th>Δ loss vs base</th><th>Δ perplexity</th></tr>"
        )
        measured = (c for c in report.models if c.key in report.losses)
        for column, row in zip(measured, _loss_rows(report), strict=True):
            delta = report.deltas.get(column.key)
            css = _delta_class(delta.loss if delta else None)
            out.append(
                f"<tr><td>{_e(row[0])}</td><td class='num'>{_e(row[1])}</td><td class='num'>{_e(row[2])}</td>"
                f"<td class='{css}'>{_e(row[3])}</td><td class='{css}'>{_e(row[4])}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append("<p>No held-out examples: no loss was measured.</p>")
    out += [f"<p>{_e(line)}</p>" for line in loss_explanation(report)]
    task_rows = _task_rows(report)
    if task_rows:
        header = "".join(f"<th>{_e(h)}</th>" for h in _task_header(report))
        out += ["<h2>Task scores</h2>", f"<table><tr>{header}</tr>"]
        for task_row in task_rows:
            cells = "".join(f"<td class='num'>{_e(c)}</td>" for c in task_row[1:])
            out.append(f"<tr><td>{_e(task_row[0])}</td>{cells}</tr>")
        out.append("</table>")
        out += [f"<p>{_e(TASK_NOTE)}</p>"] + ([f"<p>{_e(REFUSAL_NOTE)}</p>"] if report.refusal else [])
    tool_rows = _tool_call_rows(report)
    if tool_rows:
        header = "".join(f"<th>{_e(h)}</th>" for h in TOOL_CALL_HEADER)
        out += ["<h2>Tool calls</h2>", f"<table><tr>{header}</tr>"]
        for tool_row in tool_rows:
            cells = "".join(f"<td class='num'>{_e(c)}</td>" for c in tool_row[1:])
            out.append(f"<tr><td>{_e(tool_row[0])}</td>{cells}</tr>")
        out += ["</table>", f"<p>{_e(TOOL_CALL_NOTE)}</p>"]
    for name, passed, failed in _suite_rows(report):
        out += [f"<h2>Regression suite: {_e(name)}</h2>"]
        out.append("<table><tr><th>model</th><th>passed</th><th>failed</th></tr>")
        out += [f"<tr><td>{_e(a)}</td><td class='num'>{_e(b)}</td><td>{_e(c)}</td></tr>" for a, b, c in passed]
        out.append("</table>")
        out += [f"<p class='note'>{_e(line)}</p>" for line in failed]
    for warning in report.warnings:
        out.append(f"<p class='note'>{_e(warning)}</p>")
    out += ["<h2>Settings</h2>", "<table>"]
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _settings_rows(report)]
    out.append("</table>")
    for worse, key, items in _ranked(report):
        label = report.label(key)
        if not items:
            if worse and report.losses:
                out.append(f"<p>No held-out example got worse with {_e(label)}.</p>")
            continue
        out.append(f"<h2>Held-out examples that {'got worse' if worse else 'got better'}: {_e(label)}</h2>")
        out.append("<table><tr><th>example</th><th>prompt</th><th>base loss</th><th>loss</th><th>Δ</th></tr>")
        out += [
            f"<tr><td>{_e(i.where)}</td><td>{_e(i.prompt)}</td><td class='num'>{_number(i.base)}</td>"
            f"<td class='num'>{_number(i.loss)}</td><td class='{_delta_class(i.delta)}'>"
            f"{_signed(i.delta)}</td></tr>"
            for i in items
        ]
        out.append("</table>")
    if report.generations:
        out.append("<h2>Answers side by side</h2>")
        out.append(
            "<p>Same prompts, same decoding. Words the adapter dropped are <del>struck out</del> in the base "
            "column; words it added are <ins>marked</ins> in its own.</p>"
        )
        out.append("<table class='gen'><tr><th>prompt</th>" + "".join(f"<th>{_e(c.label)}</th>" for c in report.models))
        out.append("</tr>")
        for item in report.generations:
            out.append(_generation_row(item, report.models))
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _generation_row(item: Generation, columns: list[ReportColumn]) -> str:
    prompt = _e(_conversation_text(item.prompt) if len(item.prompt) > 1 else prompt_text(item.prompt))
    if item.reference is not None:
        prompt += f"<div class='ref'>reference: {_e(item.reference)}</div>"
    cells = [f"<td class='prompt'>{item.index + 1}. {prompt}</td>"]
    others = [c.key for c in columns if c.key != "base"]
    diffs = item.diff
    for column in columns:
        key = column.key
        if key == "base":
            # With one adapter, the base shows what it dropped; with two, plain text (each adapter differs).
            text = (
                _diff_html(diffs[others[0]], "base")
                if len(others) == 1 and others[0] in diffs
                else _e(item.outputs["base"])
            )
        elif not item.changed(key):
            text = _e(item.outputs[key]) + "<div class='same'>(same as base)</div>"
        else:
            text = _diff_html(diffs[key], "other") if key in diffs else _e(item.outputs[key])
        cells.append(f"<td>{text}</td>")
    return "<tr>" + "".join(cells) + "</tr>"
