"""Warnings about a whole dataset that a domain expert needs and an ML expert would give.

Each is a plain sentence with a number and what to do; none stops an import.
"""

from __future__ import annotations

from backend.data.report import Advice, DataReport, count

FEW_EXAMPLES = 300
SMALL_EVAL = 50
HEAVY_DUPLICATION = 0.05
MANY_EXCLUDED = 0.10


# Column names that usually hold each part of an example, most telling first; matched ignoring case.
_MAPPING_NAMES = {
    "instruction": ("instruction", "prompt", "question", "query", "request", "input", "user", "human", "source", "src"),
    "response": ("response", "output", "answer", "completion", "reply", "assistant", "gpt", "target", "tgt"),
    "input": ("context", "input"),
    "system": ("system", "system_prompt"),
}


def guess_mapping(columns: list[str]) -> dict[str, str] | None:
    """A column mapping from the names of a file's columns, or None without an instruction and a response.

    Only a guess: it is offered once an import of the file's rows with it has accepted some
    (``backend.data.scan.Trial``), with how many.
    """
    by_name = {column.casefold(): column for column in reversed(columns)}
    mapping: dict[str, str] = {}
    for role, names in _MAPPING_NAMES.items():
        found = next((by_name[n] for n in names if n in by_name and by_name[n] not in mapping.values()), None)
        if found is not None:
            mapping[role] = found
    return mapping if "instruction" in mapping and "response" in mapping else None


def advise(report: DataReport) -> list[Advice]:
    """The warnings that apply to ``report`` (counts, split and tokens filled in)."""
    advice = _sheet_advice(report)
    n = report.accepted
    if 0 < n < FEW_EXAMPLES:
        advice.append(
            Advice(
                "few_examples",
                f"Only {count(n, 'usable example')}. A LoRA fine-tune usually needs a few hundred to a few thousand to "
                "learn a behaviour reliably; with fewer, train 2-3 epochs and watch the eval loss for overfitting.",
            )
        )
    if report.rows and report.excluded / report.rows > MANY_EXCLUDED:
        advice.append(
            Advice(
                "many_excluded",
                f"{report.excluded:,} of {report.rows:,} rows ({report.excluded / report.rows:.0%}) cannot be used; "
                "the problems below say why and what to change.",
            )
        )
    split = report.split
    if split is not None and n:
        if split.eval == 0:
            advice.append(
                Advice(
                    "no_eval",
                    "No examples are held out, so training cannot show whether the model is overfitting; "
                    "set data.eval_split to 0.05-0.1 or give a separate eval file.",
                )
            )
        elif split.eval < SMALL_EVAL:
            remedy = (
                "add examples to the eval file"
                if split.eval_file
                else "raise data.eval_split, or give a separate eval file"
            )
            advice.append(
                Advice(
                    "small_eval",
                    f"The eval split holds only {count(split.eval, 'example')}, too few for a steady eval loss; "
                    f"aim for at least {SMALL_EVAL} ({remedy}).",
                )
            )
    seen = report.accepted + (report.duplicates if report.options.get("dedupe") else 0)
    if seen and report.duplicates / seen > HEAVY_DUPLICATION:
        share = f"{report.duplicates / seen:.0%}"
        if report.options.get("dedupe"):
            message = f"{count(report.duplicates, 'exact duplicate')} ({share}) removed; check how the data was made."
        else:
            message = (
                f"{count(report.duplicates, 'example')} ({share}) repeat earlier ones exactly: the model over-learns "
                "them, and copies can land in both train and eval, making the eval loss look better than it is. "
                "Turn on dedupe."
            )
        advice.append(Advice("duplicates", message))
    if report.placeholders:
        advice.append(
            Advice(
                "placeholders",
                f"{count(report.placeholders, 'example')} with unfilled template placeholders such as {{{{name}}}}; "
                "the model will learn to write them. Fill them in where the data was generated (ignore this for code).",
            )
        )
    if report.chat_examples and report.text_examples:
        advice.append(
            Advice(
                "mixed_kinds",
                f"The data mixes {count(report.chat_examples, 'conversation')} with "
                f"{count(report.text_examples, 'plain-text piece')}; the text is learned in full, the conversations "
                "only in the assistant's replies.",
            )
        )
    advice += _token_advice(report)
    return advice


def _sheet_advice(report: DataReport) -> list[Advice]:
    """A sheet named where no workbook is read: said, since the file was read whole instead."""
    sheet = report.options.get("sheet")
    if sheet is None or not report.files or any(f.kind == "xlsx" for f in report.files):
        return []
    files = report.files
    which = f"{files[0].name} is not one" if len(files) == 1 else f"none of the {len(files):,} files read is one"
    return [
        Advice(
            "sheet_unused",
            f"The sheet '{sheet}' is named (--sheet; data.sheet in a job spec), but only Excel workbooks have sheets "
            f"and {which}, so no sheet was chosen. Remove the sheet, or give the workbook (.xlsx) itself.",
        )
    ]


def _token_advice(report: DataReport) -> list[Advice]:
    t = report.tokens
    if t is None:
        return []
    advice = []
    if t.truncated:
        advice.append(
            Advice(
                "truncated",
                f"{count(t.truncated, 'example')} ({t.truncated / max(1, t.examples):.1%}) longer than max length "
                f"{t.max_length:,} lose {count(t.cut_tokens, 'token')} from their ends; a max length of "
                f"{t.percentiles.get('p99', t.longest):,} would keep 99% whole (more memory per step).",
            )
        )
    if t.lost_reply:
        advice.append(
            Advice(
                "reply_cut",
                f"In a sample of {t.loss_sample:,}, {count(t.lost_reply, 'example')} had the prompt fill the max "
                "length, so the reply is cut entirely and teaches nothing; raise the max length or shorten prompts.",
            )
        )
    if t.tools_ignored:
        advice.append(
            Advice(
                "tools_ignored",
                f"{count(t.tools_ignored, 'example')} with tool definitions, but this model's chat template does not "
                "show tools, so the model will not see them; choose a model whose template supports tools.",
            )
        )
    if t.failed:
        advice.append(
            Advice(
                "template_failed",
                f"The model's chat template could not render {count(t.failed, 'example')}; see the problems.",
            )
        )
    return advice
