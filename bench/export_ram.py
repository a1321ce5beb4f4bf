"""Peak RAM of each logits check of a merge or export, in each precision it can run in, per parameter.

    python bench/export_ram.py [--layers 24] [--out bench/results/export_ram.md]

The merge and the GGUF writer stream one tensor at a time; the checks that prove them load whole
models (``backend/export/check_ram.py``). This measures each check in its own process on a
random-weight Llama with the tiny test tokenizer (memory does not depend on the weights' values;
``--layers`` sets its size) and an r=16 adapter on every linear layer, and reports
(peak RSS - RSS after the imports) / parameters: the bytes per parameter ``check_ram`` sizes
each check with (``layerwise``: the model kept in 16 bits, each layer computed in float32).

Checks: ``reference`` (PEFT's base + adapter, and the base alone: merge and GGUF LoRA export),
``reload`` (a saved model's logits: the merged model, or the source of a GGUF export) and
``gguf`` (an F16 GGUF read back by transformers). llama.cpp runs in a child process on the
memory-mapped file; its peak is listed apart when llama-cpp-python is installed.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.peak_rss import peak_rss_bytes  # noqa: E402 - after the repo is on the path

KINDS = {"reference": "model", "reload": "model", "gguf": "gguf"}
"""Each check and the kind ``check_ram`` sizes it as: it runs in that kind's precisions."""
KIB = 1024


def build(work: Path, layers: int) -> tuple[Path, Path, Path]:
    """Base model, adapter and the base as an F16 GGUF, made once in ``work``."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from backend.export.gguf.convert import plan_gguf, write_gguf
    from tests.adapters import make_adapter
    from tests.tiny_models import build_tiny_tokenizer

    base, adapter, gguf = work / "base", work / "adapter", work / "base-F16.gguf"
    if not (base / "config.json").exists():
        tokenizer = build_tiny_tokenizer("llama")
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=layers,
            num_attention_heads=16,
            num_key_value_heads=16,
            tie_word_embeddings=False,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(base)
        tokenizer.save_pretrained(base)
    if not adapter.exists():
        make_adapter(base, adapter, r=16)
    if not gguf.exists():
        write_gguf(plan_gguf(base, "f16"), gguf)
    return base, adapter, gguf


def run_check(check: str, precision: str, base: Path, adapter: Path, gguf: Path) -> dict:
    """Run one check here (in a child process): RSS after the imports, then the peak."""
    import peft  # noqa: F401 - every check's imports, so the baseline is the same
    import psutil
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import AutoTokenizer

    from backend.export.gguf.convert import plan_gguf
    from backend.export.gguf.verify import gguf_logits, source_logits
    from backend.export.logits import prompt_ids
    from backend.export.verify_merge import adapter_logits

    ids = prompt_ids(AutoTokenizer.from_pretrained(base))
    baseline = psutil.Process().memory_info().rss
    started = time.perf_counter()
    if check == "reference":
        adapter_logits(base, adapter, ids, precision)
    elif check == "reload":
        source_logits(base, precision)
    else:
        gguf_logits(gguf, plan_gguf(base, "f16"), ids, precision)
    return {"baseline": baseline, "peak": peak_rss_bytes(), "seconds": round(time.perf_counter() - started, 1)}


def run_llama_cpp_peak(base: Path, gguf: Path) -> dict:
    """Peak RSS of llama.cpp's own child process on the F16 file (run from a small process: its fork
    starts near this one's size); {} without llama-cpp-python."""
    from transformers import AutoTokenizer

    from backend.export.gguf.llama_cpp_run import installed, run_llama_cpp
    from backend.export.logits import prompt_ids

    if not installed():
        return {}
    run_llama_cpp(gguf, prompt_ids(AutoTokenizer.from_pretrained(base)))
    return {"peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * KIB}


def parameters(base: Path) -> int:
    from backend.export.safetensors_io import list_tensors

    return sum(entry.numel for entry in list_tensors(base))


def markdown(about: dict, params: int, rows: list[dict], llama: dict, gguf_bytes: int) -> str:
    gib = 2**30
    lines = [
        "# RAM of the merge and export checks",
        "",
        f"{about['machine']}, Python {about['python']}, {about['date']}; `{about['command']}`.",
        f"Model: random-weight Llama, {params / 1e6:,.0f} M parameters (bf16 on disk), r=16 adapter on every "
        "linear layer. Each check in its own process; bytes per parameter = (peak RSS - RSS after imports) / "
        "parameters.",
        "",
        "| check | precision | RSS after imports GiB | peak RSS GiB | bytes per parameter | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['check']} | {r['precision']} | {r['baseline'] / gib:.2f} | {r['peak'] / gib:.2f} "
            f"| {(r['peak'] - r['baseline']) / params:.2f} | {r['seconds']} |"
        )
    if not llama:
        lines += ["", "llama.cpp: not installed here, not measured."]
    else:
        lines += [
            "",
            f"llama.cpp's child process on the F16 file ({gguf_bytes / gib:.2f} GiB, memory-mapped): peak RSS "
            f"{llama['peak'] / gib:.2f} GiB, file pages included (the kernel can drop them under pressure).",
        ]
    return "\n".join(lines) + "\n"


def child(args: argparse.Namespace, check: str, precision: str) -> dict:
    """One measurement in a fresh process."""
    command = [
        sys.executable,
        __file__,
        "--layers",
        str(args.layers),
        "--work",
        str(args.work),
        "--child",
        check,
        precision,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=24, help="decoder layers of the 1024-wide model (24: ~0.4 B)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lora-studio-export-ram"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "export_ram.md")
    parser.add_argument("--child", nargs=2, metavar=("CHECK", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work / f"layers-{args.layers}"
    work.mkdir(parents=True, exist_ok=True)
    if args.child:
        base, adapter, gguf = work / "base", work / "adapter", work / "base-F16.gguf"
        check, precision = args.child
        if check == "llama.cpp":
            print(json.dumps(run_llama_cpp_peak(base, gguf)))
        else:
            print(json.dumps(run_check(check, precision, base, adapter, gguf)))
        return
    base, adapter, gguf = build(work, args.layers)
    params = parameters(base)
    rows = []
    from backend.export.check_ram import BYTES_PER_PARAMETER

    for check, kind in KINDS.items():
        for precision in BYTES_PER_PARAMETER[kind]:
            row = child(args, check, precision) | {"check": check, "precision": precision}
            rows.append(row)
            print(json.dumps(row), flush=True)
    llama = child(args, "llama.cpp", "-")
    about = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["python bench/export_ram.py", *sys.argv[1:]]),
    }
    args.out.write_text(markdown(about, params, rows, llama, gguf.stat().st_size), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
