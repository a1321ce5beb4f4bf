"""``lora-studio estimate`` and ``lora-studio measure``: a training spec's GPU memory, before and during a run.

``estimate`` prints what the window's VRAM gauge shows (the peak term by term, the verdict
for a GPU, ranked suggestions, RAM and disk) without torch, for this machine's GPU or one
described by its memory. The measure job runs the spec's configuration for a few steps at its
worst-case length (``backend/training/measure.py``), in a worker this terminal follows or,
with ``--queue``, as a queued job. ``backend/cli/main.py`` adds both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from backend.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, anchor_paths, load_spec_file, run_spec
from backend.estimator.result import Estimate
from backend.jobs.checks import size_text
from backend.models.shapes import ModelShapes

_GIB = 2**30


def add_measure_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    measure = sub.add_parser(
        "measure", help="run a training spec for a few worst-case steps and record its real peak GPU memory"
    )
    measure.add_argument("spec", type=Path, help="a training spec (YAML or JSON)")
    measure.add_argument("--jobs-dir", type=Path, help="where the job folder goes (default: the data folder)")
    measure.add_argument("--queue", action="store_true", help="queue the job instead of running it here")
    measure.add_argument(
        "--json", action="store_true", help="print raw events (JSON lines); with --queue, the queued job"
    )
    measure.set_defaults(func=_measure)


def _measure(args: argparse.Namespace) -> int:
    spec = load_spec_file(args.spec, train_only=True)
    if spec is None:
        return EXIT_USAGE
    spec = anchor_paths(spec, args.spec.resolve().parent).model_copy(update={"kind": "measure"})
    if args.queue:
        from backend.cli.queue import queue_spec

        return queue_spec(spec, args.json)
    code, done = run_spec(spec, args.jobs_dir, args.json)
    if code == EXIT_OK and done is not None and not args.json:
        for name, value in sorted(done.metrics.items()):
            shown = f"{value / _GIB:.2f} GiB" if name.endswith("_bytes") else f"{value:.4g}"
            print(f"  {name:<28} {shown}")
        if done.output_path:
            print(f"calibration: {done.output_path}")
    return code


def _positive(kind: Callable[[str], float | int]) -> Callable[[str], float | int]:
    """An argparse type for a finite number above zero (a GPU size, a token count)."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
        return value

    return parse


def add_estimate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    estimate = sub.add_parser(
        "estimate",
        help="estimate a training spec's peak GPU memory, say whether it fits and what to change (no GPU needed)",
    )
    estimate.add_argument("spec", type=Path, help="a training spec (YAML or JSON)")
    gpu = estimate.add_mutually_exclusive_group()
    gpu.add_argument("--gpu", type=int, default=0, help="which of this machine's GPUs, in nvidia-smi's order")
    gpu.add_argument(
        "--gpu-memory",
        type=_positive(float),
        metavar="GIB",
        help="check against a GPU with this much memory (GiB) instead",
    )
    estimate.add_argument(
        "--p99-tokens",
        type=_positive(int),
        help="the data's 99th-percentile length in tokens, for the 'shorten max length' suggestion "
        "(`lora-studio data check FILE --model M` prints it)",
    )
    estimate.add_argument(
        "--longest-tokens",
        type=_positive(int),
        help="the data's longest example in tokens: no batch is padded beyond it (default: max_seq_length)",
    )
    estimate.add_argument("--json", action="store_true", help="print the estimate as JSON")
    estimate.set_defaults(func=_estimate)


def _estimate(args: argparse.Namespace) -> int:
    from backend.estimator import CalibrationStore, DataStats, GpuMemory, estimate
    from backend.estimator.gpus import machine_gpus
    from backend.models.errors import ModelError

    spec = load_spec_file(args.spec, train_only=True)
    if spec is None:
        return EXIT_USAGE
    if args.gpu_memory is not None:
        gpu: GpuMemory | None = GpuMemory(f"a {args.gpu_memory:g} GiB GPU", int(args.gpu_memory * _GIB))
    else:
        gpus = machine_gpus()
        if gpus and not 0 <= args.gpu < len(gpus):
            print(f"there is no GPU {args.gpu}; this machine has {len(gpus)} (0 to {len(gpus) - 1})", file=sys.stderr)
            return EXIT_USAGE
        gpu = gpus[args.gpu] if gpus else None
    try:
        shapes = _model_shapes(spec.base_model)
    except (ModelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    data = DataStats(p99_tokens=args.p99_tokens, max_tokens=args.longest_tokens)
    result = estimate(spec, shapes, gpu, data, calibration=CalibrationStore())
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2, default=str))
    else:
        _print_estimate(spec.base_model, shapes.parameter_count, result)
    return EXIT_OK


def _model_shapes(ref: str) -> ModelShapes:
    """Shapes as the form reads them: the store or a folder, the built-in model's config, or the Hub's headers."""
    from backend.models.errors import ModelError, ModelNotFoundError
    from backend.models.hub_facts import read_hub_facts
    from backend.models.hub_import import gated_message, is_hub_id
    from backend.models.shapes import shapes_from_config, shapes_from_folder
    from backend.models.store import DEFAULT_ALIAS, DEFAULT_CONFIG, get_model

    try:
        return shapes_from_folder(get_model(ref).path)
    except ModelNotFoundError:
        if ref == DEFAULT_ALIAS:
            return shapes_from_config(DEFAULT_CONFIG)
        if not is_hub_id(ref):
            raise
    try:
        facts = read_hub_facts(ref)
    except ModelError:
        raise
    except Exception as exc:  # the client's network errors: offline, timeout, refused
        raise ModelNotFoundError(
            f"{ref} is not imported and the Hugging Face Hub could not be reached ({exc}). Estimate again online, "
            f"or import it first with: lora-studio models import {ref}"
        ) from exc
    if facts.shapes is None:
        why = gated_message(ref) if not facts.accessible else f"its shapes cannot be read: {facts.problem}."
        raise ModelNotFoundError(f"{ref} cannot be estimated before it is imported; {why}")
    return facts.shapes


def _print_estimate(model: str, parameters: int, result: Estimate) -> None:
    gpu = result.gpu
    print(f"{model}: {parameters / 1e9:.2f} B parameters, {result.tokens_per_micro_batch:,} tokens per micro-batch")
    if gpu is None:
        print("no NVIDIA GPU here: pass --gpu-memory GIB to check a card of that size")
    else:
        free = f", {size_text(gpu.free_bytes)} free now" if gpu.free_bytes is not None else ""
        print(f"GPU: {gpu.name}, {size_text(gpu.total_bytes)}{free}")
    print(f"\nestimated peak: {size_text(result.total_bytes)} ({result.peak_phase})")
    if gpu is not None:
        print(f"verdict: {_VERDICTS[result.verdict]}. {result.verdict_reason}")
    if result.calibration is not None:
        print(
            f"calibrated with {result.calibration.samples} measurement(s) on this GPU: x{result.calibration.factor:.2f}"
        )
    print()
    width = max(len(term.label) for term in result.terms)
    for term in result.terms:
        print(f"  {term.label:<{width}}  {size_text(term.bytes):>9}  {term.explanation}")
    if result.suggestions:
        print("\nwhat to change, best first:")
    for number, s in enumerate(result.suggestions, 1):
        changes = ", ".join(f"{key}: {json.dumps(value)}" for key, value in s.changes.items())
        print(f"  {number}. {s.title}: {size_text(s.peak_bytes)}, {_VERDICTS[s.verdict]}")
        print(f"     {s.detail}")
        print(f"     set {changes}")
    host = result.host
    print(
        f"\nRAM: {size_text(host.ram_load_bytes)} to load, {size_text(host.ram_merge_bytes)} to merge. "
        f"Disk: {size_text(host.disk_checkpoints_bytes)} for checkpoints, {size_text(host.disk_merge_bytes)} "
        f"for a merged model, {size_text(host.disk_export_bytes)} for a GGUF export."
    )
    for note in result.notes:
        print(f"note: {note}")


_VERDICTS = {"fits": "fits", "tight": "tight", "wont_fit": "will not fit", "unknown": "unknown"}
