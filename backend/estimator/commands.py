"""``lora-studio measure``: a training spec's real peak memory, to calibrate the estimator on this GPU.

The measure job runs the spec's configuration for a few steps at its worst-case length
(``backend/training/measure.py``), in a worker this terminal follows or, with ``--queue``,
as a queued job. ``backend/cli.py`` adds it with ``add_measure_parser``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from backend.cli import EXIT_OK, EXIT_USAGE, anchor_paths, load_spec_file, run_spec

_GIB = 2**30


def add_measure_parser(sub: argparse._SubParsersAction) -> None:
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
        from backend.jobs.commands import queue_spec

        return queue_spec(spec, args.json)
    code, done = run_spec(spec, args.jobs_dir, args.json)
    if code == EXIT_OK and done is not None and not args.json:
        for name, value in sorted(done.metrics.items()):
            shown = f"{value / _GIB:.2f} GiB" if name.endswith("_bytes") else f"{value:.4g}"
            print(f"  {name:<28} {shown}")
        if done.output_path:
            print(f"calibration: {done.output_path}")
    return code
