"""``lora-studio merge`` and ``lora-studio export gguf|gguf-lora|adapter``: thin layers over ``backend/export``.

``backend/cli/main.py`` adds them with ``add_export_parsers``.
Heavy libraries load only inside the command that runs. With ``--queue`` a command checks
and queues a merge or export job instead (``backend/export/job.py`` runs it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from backend.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    absolute_path,
    model_ref,
    spec_from_options,
    stage_printer,
)
from backend.core.task_specs import GgufType, LoraType, MergeDtype
from backend.export.errors import ExportError

if TYPE_CHECKING:
    from backend.export.logits import LogitCheck


def add_export_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    merge = sub.add_parser("merge", help="merge an adapter into its 16/32-bit base and save a standalone model")
    merge.add_argument("adapter", type=Path, help="the adapter folder of a finished training job")
    merge.add_argument("--base", help="the base model (store name or folder); default: the one the adapter names")
    merge.add_argument("--out", type=Path, help="the folder to create (with --queue: default the job folder's merged/)")
    merge.add_argument("--dtype", default="auto", choices=("auto", "bfloat16", "float16", "float32"))
    merge.add_argument("--no-verify", action="store_true", help="skip the logits check against base + adapter")
    merge.add_argument("--force", action="store_true", help="replace --out if it exists")
    _add_queue_options(merge)
    merge.set_defaults(func=_merge)

    export = sub.add_parser(
        "export", help="export a model to GGUF, an adapter to a GGUF LoRA or for vLLM"
    ).add_subparsers(dest="export_command", metavar="TARGET", required=True)
    gguf = export.add_parser("gguf", help="write a checked GGUF, an Ollama Modelfile and LM Studio's layout")
    gguf.add_argument("model", type=Path, help="a merged model folder (lora-studio merge) or any supported HF folder")
    gguf.add_argument("--type", default="q8_0", choices=get_args(GgufType))
    gguf.add_argument(
        "--out",
        type=Path,
        help="root folder: OUT/PUBLISHER/NAME-TYPE/ is created (with --queue: default the job folder)",
    )
    gguf.add_argument("--name", help="model name (default: the folder's name)")
    gguf.add_argument("--publisher", default="lora-studio", help="LM Studio publisher folder")
    gguf.add_argument("--system", help="a SYSTEM prompt for the Ollama Modelfile")
    gguf.add_argument("--no-verify", action="store_true", help="skip reading the file back and the logits check")
    gguf.add_argument(
        "--merged-dir",
        type=Path,
        help="with --queue and an adapter: keep the merged model the GGUF is made from here (one job, one merge); "
        "default: a finished merge of the same adapter is used, else the job folder's merged/",
    )
    gguf.add_argument("--merge-dtype", default="auto", choices=get_args(MergeDtype), help="with --merged-dir")
    gguf.add_argument("--force", action="store_true", help="replace an existing export of the same name and type")
    _add_queue_options(gguf)
    gguf.set_defaults(func=_export_gguf)
    lora = export.add_parser(
        "gguf-lora", help="write the adapter as a GGUF LoRA for llama.cpp --lora and Ollama ADAPTER, checked"
    )
    lora.add_argument("adapter", type=Path, help="the adapter folder of a finished training job")
    lora.add_argument("--base", help="the base model (store name or folder); default: the one the adapter names")
    lora.add_argument("--type", default="f16", choices=get_args(LoraType))
    lora.add_argument("--out", type=Path, help="root folder: OUT/NAME-LoRA-TYPE/ is created (with --queue: default "
                      "the job folder)")  # fmt: skip
    lora.add_argument(
        "--name", help="adapter name (default: its training job's name, else its folder's or, for adapter/, its job's)"
    )
    lora.add_argument("--system", help="a SYSTEM prompt for the Ollama Modelfile")
    lora.add_argument("--no-verify", action="store_true", help="skip reading the file back and the llama.cpp check")
    lora.add_argument("--force", action="store_true", help="replace an existing export of the same name and type")
    _add_queue_options(lora)
    lora.set_defaults(func=_export_gguf_lora)
    adapter = export.add_parser("adapter", help="copy the adapter alone as a PEFT folder vLLM can load")
    adapter.add_argument("adapter", type=Path)
    adapter.add_argument("--out", type=Path, help="the folder to create (with --queue: default in the job folder)")
    adapter.add_argument("--force", action="store_true", help="replace --out if it exists")
    _add_queue_options(adapter)
    adapter.set_defaults(func=_export_adapter)


def _add_queue_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queue", action="store_true", help="queue it as a job (lora-studio queue) instead of running it here"
    )
    parser.add_argument("--json", action="store_true", help="with --queue: print the queued job as JSON")


def _queued(args: argparse.Namespace, settings: dict[str, object]) -> int:
    """Queue the spec these settings make; --force has no meaning for a job that starts later."""
    from backend.cli.queue import queue_spec

    if args.force:
        print("--force cannot be used with --queue: remove the old output first", file=sys.stderr)
        return EXIT_USAGE
    spec = spec_from_options(settings)
    return EXIT_USAGE if spec is None else queue_spec(spec, args.json)


def _needs_out(args: argparse.Namespace) -> bool:
    if args.out is None:
        print("--out is required unless the job is queued (--queue)", file=sys.stderr)
        return True
    return False


def _failed(exc: ExportError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)
    return EXIT_FAILED


def _merge(args: argparse.Namespace) -> int:
    from backend.export.merge import merge_adapter, plan_merge

    if args.queue:
        return _queued(
            args,
            {
                "kind": "merge", "name": args.out.name if args.out else None, "adapter": absolute_path(args.adapter),
                "base_model": model_ref(args.base), "dtype": args.dtype, "verify": not args.no_verify,
                "output_dir": absolute_path(args.out),
            },
        )  # fmt: skip
    if _needs_out(args):
        return EXIT_USAGE
    try:
        plan = plan_merge(args.adapter, args.base, args.dtype)
        print(
            f"merging into {plan.base_path} ({plan.parameter_count / 1e6:.1f}M parameters, {plan.dtype}); "
            f"needs about {plan.ram_bytes / 2**30:.1f} GiB RAM and {plan.output_bytes / 2**30:.2f} GiB disk"
        )
        for warning in plan.warnings:
            print(f"warning: {warning}")
        result = merge_adapter(
            args.adapter, args.out, base=args.base, dtype=args.dtype, verify=not args.no_verify,
            overwrite=args.force, progress=stage_printer(),
        )  # fmt: skip
    except ExportError as exc:
        return _failed(exc)
    for check in result.checks:
        print(f"  {check.describe()}")
    print(f"merged model -> {result.path}")
    return EXIT_OK


def _export_gguf(args: argparse.Namespace) -> int:
    from backend.export.gguf_export import export_gguf

    if args.queue:
        return _queued(
            args,
            {
                "kind": "export", "name": args.name or args.model.resolve().name, "source": absolute_path(args.model),
                "target": "gguf", "gguf_type": args.type, "publisher": args.publisher, "system": args.system,
                "verify": not args.no_verify, "output_dir": absolute_path(args.out),
                "merged_dir": absolute_path(args.merged_dir), "merge_dtype": args.merge_dtype,
            },
        )  # fmt: skip
    if args.merged_dir is not None:
        print("--merged-dir is for a queued export of an adapter (--queue)", file=sys.stderr)
        return EXIT_USAGE
    if _needs_out(args):
        return EXIT_USAGE
    try:
        result = export_gguf(
            args.model, args.out, args.type, model_name=args.name, publisher=args.publisher, system=args.system,
            verify=not args.no_verify, overwrite=args.force, progress=stage_printer(),
        )  # fmt: skip
    except ExportError as exc:
        return _failed(exc)
    _print_checks(result.checks, result.warnings)
    if result.llama_cpp_sample is not None:
        print(f"  llama.cpp generated: {result.llama_cpp_sample!r}")
    print(f"GGUF -> {result.gguf}")
    print(f"Ollama: cd {result.folder} && ollama create {result.folder.name.lower()} -f Modelfile")
    return EXIT_OK


def _export_gguf_lora(args: argparse.Namespace) -> int:
    from backend.export.gguf_lora_export import export_gguf_lora, where_the_base_comes_from

    if args.queue:
        return _queued(
            args,
            {
                "kind": "export", "name": args.name or _adapter_name(args.adapter),
                "source": absolute_path(args.adapter), "target": "gguf_lora", "lora_type": args.type,
                "base_model": model_ref(args.base), "system": args.system, "verify": not args.no_verify,
                "output_dir": absolute_path(args.out),
            },
        )  # fmt: skip
    if _needs_out(args):
        return EXIT_USAGE
    try:
        result = export_gguf_lora(
            args.adapter, args.out, args.type, base=args.base, name=args.name, system=args.system,
            verify=not args.no_verify, overwrite=args.force, progress=stage_printer(),
        )  # fmt: skip
    except ExportError as exc:
        return _failed(exc)
    _print_checks(result.checks, result.warnings)
    if result.llama_cpp_sample is not None:
        print(f"  llama.cpp generated from the base with the adapter: {result.llama_cpp_sample!r}")
    print(f"GGUF LoRA adapter -> {result.gguf}")
    print(f"llama.cpp: llama-cli -m BASE.gguf --lora {result.gguf}")
    print(f"Ollama: set FROM in {result.modelfile} first. {where_the_base_comes_from(result.base_path)}")
    return EXIT_OK


def _print_checks(checks: Sequence[LogitCheck], warnings: Sequence[str]) -> None:
    for check in checks:
        print(f"  {check.describe()}")
    for warning in warnings:
        print(f"warning: {warning}")


def _adapter_name(folder: Path) -> str | None:
    """The adapter's own name for the queued job; a folder that is no adapter is pre-flight's to refuse."""
    from backend.export.adapter import read_adapter

    try:
        return read_adapter(folder).name
    except ExportError:
        return None


def _export_adapter(args: argparse.Namespace) -> int:
    from backend.export.adapter_export import export_adapter

    if args.queue:  # the job writes OUTPUT_DIR/NAME: --out's parent and name
        out = args.out.expanduser().resolve() if args.out else None
        return _queued(
            args,
            {
                "kind": "export", "name": out.name if out else None, "source": absolute_path(args.adapter),
                "target": "adapter", "output_dir": str(out.parent) if out else None,
            },
        )  # fmt: skip
    if _needs_out(args):
        return EXIT_USAGE
    try:
        result = export_adapter(args.adapter, args.out, overwrite=args.force, progress=stage_printer())
    except ExportError as exc:
        return _failed(exc)
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"adapter (PEFT, rank {result.rank}) -> {result.path}")
    return EXIT_OK
