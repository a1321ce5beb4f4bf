"""How the adapter registry scales: 1,000 versions added, listed, compared and re-indexed, on this machine.

    python bench/registry_scale.py [--names 50] [--versions 20] [--out bench/results/registry_scale.md]

Builds ``names x versions`` registered versions through ``Registry.add`` in a throwaway data
folder. Each source adapter is a real PEFT folder layout (adapter_config.json, a small
safetensors file, a tokenizer file and a LoRA Studio record with a spec, metrics and an
evaluation), so the registry reads what it would read for trained adapters; the weights are
small because their size does not enter any registry operation except the copy (hard
links here). Then it times, each several times, median and max:

* listing every version (``Registry.versions()``: the index refresh that stats every
  folder, then one SQLite query) -- what the Adapters page does to fill its table;
* the same after a change made by another process (one adapter re-indexed);
* comparing two versions (``diff``, reading both folders);
* rebuilding the index from the folders (the index file deleted first).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_source(folder: Path, rng: random.Random, rank: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "base_model_name_or_path": "base"})
    )
    header = json.dumps({"w": {"dtype": "F32", "shape": [64], "data_offsets": [0, 256]}}).encode()
    (folder / "adapter_model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(256))
    (folder / "tokenizer_config.json").write_text("{}")
    loss = round(rng.uniform(1.0, 3.0), 4)
    record = {
        "format": 1,
        "name": folder.name,
        "base_model": {"ref": "base", "path": "/models/base", "fingerprint": "f" * 64},
        "dataset": {"path": "train.jsonl", "content_hash": f"{rng.getrandbits(256):064x}"},
        "spec": {"lora": {"r": rank, "alpha": 2 * rank}, "training": {"learning_rate": rng.choice([1e-4, 2e-4])}},
        "metrics": {"train_loss": loss + 0.2, "eval_loss": loss},
        "evaluations": [{"job_id": "e", "loss": loss, "base_loss": 3.1, "loss_delta": loss - 3.1}],
    }
    (folder / "lora_studio_adapter.json").write_text(json.dumps(record))
    return folder


def timed(func, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=50)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/registry_scale.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LORA_STUDIO_HOME"] = str(Path(tmp) / "home")
        from backend.registry.registry import Registry

        rng = random.Random(0)
        sources = [make_source(Path(tmp) / "src" / f"s{i}", rng, rng.choice([4, 8, 16, 32])) for i in range(40)]
        registry = Registry()
        start = time.perf_counter()
        for n in range(args.names):
            for _ in range(args.versions):
                registry.add(rng.choice(sources), f"adapter-{n:03d}")
        add_s = time.perf_counter() - start
        total = args.names * args.versions
        registry.promote("adapter-000", 3, reason="bench")

        rows = registry.versions()
        assert len(rows) == total, len(rows)
        listing = timed(registry.versions, 15)
        one_name = timed(lambda: registry.versions("adapter-007"), 15)

        def changed_elsewhere() -> None:
            registry.note("adapter-001", 1, "a note from elsewhere")  # re-indexes one adapter, as a CLI would

        change = timed(lambda: (changed_elsewhere(), registry.versions()), 5)
        a, b = registry.get("adapter-002", 1), registry.get("adapter-002", 2)
        diff = timed(lambda: registry.diff(registry.get("adapter-002", 1), registry.get("adapter-002", 2)), 15)
        assert registry.diff(a, b)["a"] == "adapter-002 v1"

        def rebuild() -> None:
            for path in registry.db_path.parent.glob("registry.db*"):
                path.unlink()
            Registry().rebuild()

        rebuilt = timed(rebuild, 3)
        assert [r.to_dict() for r in Registry().versions()] == [r.to_dict() for r in registry.versions()]

    lines = [
        "# Adapter registry at scale",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M')}",
        f"- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
        f"Python {platform.python_version()}",
        f"- {total:,} versions: {args.names} named adapters x {args.versions} versions, added through Registry.add "
        "(hard-linked copies of small PEFT folders with full records)",
        "",
        "| operation | median (ms) | max (ms) |",
        "|---|---:|---:|",
        f"| list all {total:,} versions (refresh by folder signature + query) | {listing[0] * 1e3:.1f} | "
        f"{listing[1] * 1e3:.1f} |",
        f"| list one adapter's {args.versions} versions | {one_name[0] * 1e3:.1f} | {one_name[1] * 1e3:.1f} |",
        f"| a note added, then list all (one adapter re-indexed) | {change[0] * 1e3:.1f} | {change[1] * 1e3:.1f} |",
        f"| compare two versions (diff, both folders read) | {diff[0] * 1e3:.1f} | {diff[1] * 1e3:.1f} |",
        f"| rebuild the index from {total:,} folders (index deleted first) | {rebuilt[0] * 1e3:.0f} | "
        f"{rebuilt[1] * 1e3:.0f} |",
        "",
        f"Adding {total:,} versions took {add_s:.1f} s ({add_s / total * 1e3:.1f} ms each: copy, record, history "
        "line, re-index of that adapter).",
        "",
        "Bar (issue 17): listing and comparing 1,000 versions interactive, page fill under 200 ms. The table's "
        "fill in the window is measured separately when the Adapters page exists; the backend's part is above.",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
