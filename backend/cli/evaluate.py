"""``lora-studio evaluate``: the base model against an adapter (and optionally a second one), from a terminal.

It runs the evaluate job the queue would run, in a worker this terminal follows, and then
prints its numbers and where the report is; ``--queue`` checks and queues the job instead.
``backend/cli/main.py`` adds it with ``add_evaluate_parser``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from backend.cli.common import EXIT_OK, EXIT_USAGE, absolute_path, model_ref, run_spec, spec_from_options


def add_evaluate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluate = sub.add_parser(
        "evaluate", help="compare the base model with an adapter on held-out data and prompts, in a report"
    )
    evaluate.add_argument("adapter", type=Path, help="the adapter folder of a finished training job")
    evaluate.add_argument("--compare", type=Path, metavar="OTHER", help="a second adapter, for an A/B comparison")
    evaluate.add_argument("--prompts", type=Path, metavar="FILE", help="prompts to answer side by side, one per line")
    evaluate.add_argument(
        "--data", type=Path, metavar="PATH", help="held-out data (default: the adapter's own evaluation split)"
    )
    evaluate.add_argument("--base", help="the base model (default: the one the adapter was trained on)")
    evaluate.add_argument(
        "--suite", type=Path, action="append", default=[], metavar="FILE", help="a regression suite (repeatable)"
    )
    evaluate.add_argument(
        "--refusal-check", action="store_true", help="also report how often each model refuses (docs/evaluation.md)"
    )
    evaluate.add_argument("--name", help="a name for the job and its report")
    evaluate.add_argument("--jobs-dir", type=Path, help="where the job folder goes (default: the data folder)")
    evaluate.add_argument("--queue", action="store_true", help="queue the job instead of running it here")
    evaluate.add_argument(
        "--json", action="store_true", help="print raw events (JSON lines); with --queue, the queued job"
    )
    evaluate.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    spec = spec_from_options(
        {
            "kind": "evaluate",
            "name": args.name,
            "adapter": absolute_path(args.adapter),
            "compare_adapter": absolute_path(args.compare),
            "prompts": absolute_path(args.prompts),
            "data": absolute_path(args.data),
            "base_model": model_ref(args.base),
            "suites": [absolute_path(path) for path in args.suite] or None,
            "refusal_check": args.refusal_check or None,
        }
    )
    if spec is None:
        return EXIT_USAGE
    if args.queue:
        from backend.cli.queue import queue_spec

        return queue_spec(spec, args.json)
    code, done = run_spec(spec, args.jobs_dir, args.json)
    if code == EXIT_OK and done is not None and not args.json:
        width = max((len(name) for name in done.metrics), default=0)
        for name, value in sorted(done.metrics.items()):
            print(f"  {name:<{width}}  {value:.4g}")
        print(f"report: {done.output_path}")
    return code
