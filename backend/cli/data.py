"""``lora-studio data``: check, import, preview and list datasets from a terminal."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.cli.common import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, EXIT_USAGE, stage_printer
from backend.core.progress import ProgressFn, each_stage_once
from backend.data.formats import FORMATS, MAPPING_ROLES
from backend.data.report import DataReport
from backend.data.scan import ImportOptions

if TYPE_CHECKING:
    from backend.data.examples import Example
    from backend.data.preview_protocol import ExamplePreview, PreviewLine
    from backend.data.tokens import Preview

_SHOWN_PER_PROBLEM = 5


def _import_options(args: argparse.Namespace) -> ImportOptions | None:
    """The reading options from the command line, or None (after saying why) when a mapping is malformed."""
    columns = {}
    for item in args.map or []:
        role, _, column = item.partition("=")
        if role not in MAPPING_ROLES or not column:
            print(f"--map takes ROLE=COLUMN with ROLE one of {', '.join(MAPPING_ROLES)}; got {item!r}", file=sys.stderr)
            return None
        columns[role] = column
    if columns and not {"instruction", "response"} <= columns.keys():
        print("--map needs at least instruction=COLUMN and response=COLUMN", file=sys.stderr)
        return None
    fmt = "columns" if columns else args.format
    return ImportOptions(
        format=fmt, columns=columns or None, dedupe=args.dedupe, chunk_chars=args.chunk_chars, sheet=args.sheet
    )


def _progress_printer() -> Callable[[float], None] | None:
    """Prints the share read, in place, when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    last = [-1]

    def show(fraction: float) -> None:
        percent = int(fraction * 100)
        if percent != last[0]:
            last[0] = percent
            print(f"\r  reading {percent:3d}%", end="" if percent < 100 else "\n", file=sys.stderr, flush=True)

    return show


def _model_stages(args: argparse.Namespace) -> ProgressFn:
    """Each stage of a model import on its own line; under ``--json`` or ``--serve`` on stderr, so stdout is JSON."""
    if getattr(args, "json", False) or getattr(args, "serve", False):
        return each_stage_once(lambda stage: print(f"  model: {stage}", file=sys.stderr, flush=True))
    return stage_printer("model: ")


def _token_counter(args: argparse.Namespace) -> Any:
    if not args.model:
        return None
    from backend.data.tokens import TokenCounter, load_tokenizer

    tokenizer = load_tokenizer(args.model, progress=_model_stages(args))
    return TokenCounter(tokenizer, args.model, args.max_length, seed=args.seed, system_prompt=args.system_prompt)


def _print_report(report: DataReport, shown: int) -> None:
    for line in report.summary_lines():
        print(line)
    if report.advice:
        print("\nwarnings:")
        for advice in report.advice:
            print(f"  - {advice.message}")
    unused = report.unused_lines()
    if unused:
        print("\nfields not used:")
        for line in unused:
            print(f"  - {line}")
    groups = report.problem_groups()
    if groups:
        print("\nproblems:")
    for group in groups:
        print(f"  {group.title}: {group.tally}. What to do: {group.hint}.")
        for line in group.listed[:shown]:
            print(f"    {line}")
        if group.entries > shown:
            print(f"    … and {group.entries - shown:,} more (--report FILE lists them)")
    if report.tokens:
        print()
        for line in [*report.token_lines(), *report.histogram_lines()]:
            print(f"  {line}")


def _run_data_command(args: argparse.Namespace, store: bool) -> int:
    from backend.data.chat_tokens import TemplateError
    from backend.data.problems import DataError
    from backend.models.errors import ModelError

    options = _import_options(args)
    if options is None:
        return EXIT_USAGE
    try:
        counter = _token_counter(args)
        settings = {"counter": counter, "eval_fraction": args.eval_split, "seed": args.seed}
        if store:
            from backend.data.store import import_dataset

            stored, report = import_dataset(
                args.path, options, name=args.name, progress=_progress_printer(), **settings
            )
        else:
            from backend.data.load import check_dataset

            stored, report = None, check_dataset(args.path, options, progress=_progress_printer(), **settings)
    except KeyboardInterrupt:
        print("\ncancelled; nothing was stored", file=sys.stderr)
        return EXIT_CANCELLED
    except (DataError, ModelError, TemplateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.report:
        report.save(args.report)
    if args.json:
        print(report.to_json(), end="")
    else:
        _print_report(report, args.show)
        if args.report:
            print(f"\nreport written to {args.report}")
        if stored is not None:
            print(f"\nstored {stored.examples:,} examples in {stored.path}")
            print(f"content hash {stored.content_hash}; train on it with data.path: {stored.path}")
    return EXIT_OK if report.usable else EXIT_FAILED


def _data_check(args: argparse.Namespace) -> int:
    return _run_data_command(args, store=False)


def _data_import(args: argparse.Namespace) -> int:
    return _run_data_command(args, store=True)


def _data_preview(args: argparse.Namespace) -> int:
    from backend.data.chat_tokens import TemplateError
    from backend.data.load import read_dataset
    from backend.data.problems import DataError
    from backend.data.tokens import load_tokenizer, preview
    from backend.models.errors import ModelError

    options = _import_options(args)
    if options is None:
        return EXIT_USAGE
    if args.serve and args.example is not None:
        print("--serve reads the example numbers on stdin; give no N", file=sys.stderr)
        return EXIT_USAGE
    number = 1 if args.example is None else args.example
    try:
        examples = read_dataset(args.path, options).examples
        problem = _out_of_range(number, len(examples))
        if problem and not args.serve:  # said before the tokenizer loads, which takes seconds
            print(problem, file=sys.stderr)
            return EXIT_USAGE
        tokenizer = load_tokenizer(args.model, progress=_model_stages(args))
        if args.serve:
            return _serve_previews(examples, tokenizer, args.max_length, args.system_prompt)
        example = examples[number - 1]
        shown = preview(tokenizer, example, args.max_length, system_prompt=args.system_prompt)
    except (DataError, ModelError, TemplateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        from backend.data.preview_protocol import preview_json

        print(preview_json(_example_preview(number, example, shown)))
        return EXIT_OK
    print(f"example {number} ({example.where()}): {shown.tokens:,} tokens, {shown.loss_tokens:,} carry loss")
    print("text between [[ and ]] is what the model learns to write" + (", ||| marks the cut" if shown.cut_at else ""))
    for notice in shown.notices:
        print(f"note: {notice}")
    print()
    print(shown.marked())
    return EXIT_OK


def _out_of_range(number: int, usable: int) -> str:
    """Why ``number`` names no usable example; "" when it names one."""
    return "" if 1 <= number <= usable else f"there are {usable:,} usable examples; choose 1 to {usable:,}"


def _example_preview(number: int, example: Example, shown: Preview) -> ExamplePreview:
    """One rendered example as ``--json`` prints it and ``--serve`` answers it."""
    from backend.data.preview_protocol import ExamplePreview

    return ExamplePreview(
        example=number,
        file=example.file,
        line=example.line,
        unit=example.unit,
        row=example.row,
        where=example.where(),
        text=shown.text,
        loss_spans=shown.loss_spans,
        tokens=shown.tokens,
        loss_tokens=shown.loss_tokens,
        cut_at=shown.cut_at,
        notices=shown.notices,
    )


def _serve_previews(examples: list[Example], tokenizer: Any, max_length: int, system_prompt: str | None) -> int:
    """Answer example numbers read from stdin, one JSON line each, until stdin ends.

    The dataset is read and the tokenizer loaded once, so each answer takes milliseconds
    instead of a fresh process's seconds. A parent that dies closes stdin, which ends this
    process too.
    """
    from backend.data.preview_protocol import PreviewReady, preview_json

    print(preview_json(PreviewReady(examples=len(examples))), flush=True)
    for line in sys.stdin:
        if line.strip():
            answer = _serve_answer(line.strip(), examples, tokenizer, max_length, system_prompt)
            print(preview_json(answer), flush=True)
    return EXIT_OK


def _serve_answer(
    request: str, examples: list[Example], tokenizer: Any, max_length: int, system_prompt: str | None
) -> PreviewLine:
    """One example as ``--json`` prints it, or a ``PreviewError`` saying why not; the server goes on either way."""
    from backend.data.chat_tokens import TemplateError
    from backend.data.preview_protocol import PreviewError
    from backend.data.tokens import preview

    try:
        number = int(request)
    except ValueError:
        return PreviewError(example=None, error=f"expected an example number, got {request!r}")
    problem = _out_of_range(number, len(examples))
    if problem:
        return PreviewError(example=number, error=problem)
    example = examples[number - 1]
    try:
        return _example_preview(number, example, preview(tokenizer, example, max_length, system_prompt=system_prompt))
    except TemplateError as exc:  # ours: its message says what to do
        return PreviewError(example=number, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a template's raise_exception, or a tokenizer's, must not end the server
        traceback.print_exc(file=sys.stderr)
        return PreviewError(
            example=number, error=f"the chat template or tokenizer failed on it ({type(exc).__name__}: {exc})"
        )


def _data_list(args: argparse.Namespace) -> int:
    from backend.data.store import list_stored

    stored = list_stored()
    if args.json:
        print(json.dumps([{**vars(d), "path": str(d.path)} for d in stored], indent=2))
        return EXIT_OK
    if not stored:
        print("no datasets imported yet; run: lora-studio data import FILE")
    for d in stored:
        print(f"{d.name:32s} {d.examples:>10,} examples  {d.content_hash[:12]}  {d.path}")
    return EXIT_OK


def add_data_parser(sub: Any) -> None:
    data = sub.add_parser("data", help="check, import and preview datasets").add_subparsers(
        dest="data_command", metavar="ACTION", required=True
    )
    data_check = data.add_parser("check", help="validate a dataset and list every problem, with its line")
    _data_arguments(data_check)
    data_check.set_defaults(func=_data_check)
    data_import = data.add_parser("import", help="validate a dataset and store its usable examples as Arrow")
    _data_arguments(data_import)
    data_import.add_argument("--name", help="the name to store it under (default: the file's name)")
    data_import.set_defaults(func=_data_import)
    data_preview = data.add_parser("preview", help="show one example as the model sees it, its learned part marked")
    data_preview.add_argument("path", type=Path, help="a data file, folder or imported dataset")
    data_preview.add_argument("example", type=int, nargs="?", help="which usable example (from 1; default 1)")
    _reading_arguments(data_preview)
    data_preview.add_argument("--model", default="default", help="whose chat template and tokenizer (default: SmolLM2)")
    data_preview.add_argument("--max-length", type=int, default=_DEFAULT_MAX_LENGTH, help="mark where this cuts")
    _system_prompt_argument(data_preview)
    data_preview.add_argument(
        "--json", action="store_true", help="print the text, its loss spans (character offsets) and the cut as JSON"
    )
    data_preview.add_argument(
        "--serve",
        action="store_true",
        help="read the dataset and tokenizer once, then answer example numbers read from stdin, one JSON line each",
    )
    data_preview.set_defaults(func=_data_preview)
    data_list = data.add_parser("list", help="list imported datasets")
    data_list.add_argument("--json", action="store_true")
    data_list.set_defaults(func=_data_list)


_DEFAULT_MAX_LENGTH = 1024


def _reading_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=["auto", *FORMATS[:-1]], default="auto", help="override the detected format"
    )
    parser.add_argument(
        "--map",
        action="append",
        metavar="ROLE=COLUMN",
        help=f"map a column to a role ({', '.join(MAPPING_ROLES)}); repeat; instruction and response are required",
    )
    parser.add_argument("--dedupe", action="store_true", help="drop exact duplicates (they are reported either way)")
    parser.add_argument("--chunk-chars", type=int, default=4000, help="size of plain-text pieces, in characters")
    parser.add_argument(
        "--sheet", metavar="NAME", help="the sheet of an Excel workbook to read (default: the first visible with rows)"
    )


def _system_prompt_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--system-prompt",
        metavar="TEXT",
        help='as data.system_prompt: the system prompt of examples without one ("": none; default: what the '
        "model's chat template does)",
    )


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a data file, a folder of them, or a saved Hugging Face dataset")
    _reading_arguments(parser)
    parser.add_argument("--model", help="also count tokens with this model's tokenizer and chat template")
    parser.add_argument("--max-length", type=int, default=_DEFAULT_MAX_LENGTH, help="max sequence length in tokens")
    _system_prompt_argument(parser)
    parser.add_argument("--eval-split", type=float, default=0.1, help="share held out for evaluation (default 0.1)")
    parser.add_argument("--seed", type=int, default=42, help="split seed (default 42)")
    parser.add_argument("--report", type=Path, help="also write the report: .json, or .md for Markdown")
    parser.add_argument("--show", type=int, default=_SHOWN_PER_PROBLEM, help="problems listed per kind (default 5)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
