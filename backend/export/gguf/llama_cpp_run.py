"""llama.cpp's own reading of a GGUF file, in a child process.

llama.cpp is native code, and a crash inside it (its AMX path segfaults on some CPUs,
ggml-org/llama.cpp#20824) would otherwise kill the export job that wrote a good file.
In a child, a crash becomes an error message and the job survives to report it.

    python -m backend.export.gguf.llama_cpp_run MODEL.gguf IDS.json OUT_DIR [LORA.gguf]

writes ``OUT_DIR/<n>.npy`` (logits of every position of prompt n) and ``OUT_DIR/sample.txt``,
with the GGUF LoRA adapter applied (scale 1, as ``--lora`` does) when one is given.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from backend.export.errors import ExportError

SAMPLE_PROMPT = "The capital of France is"
_TIMEOUT_S = 900


def installed() -> bool:
    """llama-cpp-python is importable (looked up, not imported: importing loads the native library)."""
    return importlib.util.find_spec("llama_cpp") is not None


def run_llama_cpp(model: Path, ids: list[list[int]], lora: Path | None = None) -> tuple[list[object], str]:
    """llama.cpp's logits for each row of ``ids`` (numpy arrays) and a short greedy completion, with ``lora``
    applied when given."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="lora-studio-llama-cpp-") as tmp:
        out = Path(tmp)
        (out / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
        argv = [sys.executable, "-m", __name__, str(model), str(out / "ids.json"), str(out)]
        argv += [str(lora)] if lora is not None else []
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise ExportError(f"llama.cpp did not finish reading {model.name} in {_TIMEOUT_S} s.") from None
        if done.returncode != 0:
            raise ExportError(_crash_message(model, done.returncode, done.stderr), error_type="dependency",
                              hint=_CRASH_HINT)  # fmt: skip
        logits = [np.load(out / f"{n}.npy") for n in range(len(ids))]
        return logits, (out / "sample.txt").read_text(encoding="utf-8")


_CRASH_HINT = (
    "The GGUF file itself passed the checks that do not need llama.cpp. If llama.cpp crashed, rebuild "
    "llama-cpp-python for AVX2 (see the Makefile's gguf-quant target) or export with verify off."
)


def _crash_message(model: Path, code: int, stderr: str) -> str:
    how = f"crashed ({signal.Signals(-code).name})" if code < 0 else f"failed (exit {code})"
    last = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or [""]
    return f"llama.cpp {how} while running {model.name}. {last[0]}".strip()


def main(argv: list[str]) -> int:
    import llama_cpp
    import numpy as np

    model, ids_file, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    lora = argv[3] if len(argv) > 3 else None
    ids = json.loads(ids_file.read_text(encoding="utf-8"))
    llm = llama_cpp.Llama(model_path=str(model), lora_path=lora, n_ctx=512, logits_all=True, verbose=False)
    try:
        for n, row in enumerate(ids):
            llm.reset()
            llm.eval(row)
            np.save(out / f"{n}.npy", np.array(llm.scores[: len(row)], dtype=np.float32))
        llm.reset()
        completion = llm.create_completion(SAMPLE_PROMPT, max_tokens=8, temperature=0.0)
        (out / "sample.txt").write_text(completion["choices"][0]["text"], encoding="utf-8")
    finally:
        llm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
