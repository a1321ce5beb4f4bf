"""Wheels for running the GPU benchmarks on a GPU machine without network access.

    python bench/device_wheels.py [--dest .whl]

A typical preinstalled CUDA image has Python 3.12 with torch, accelerate, tokenizers,
safetensors, pyarrow, pandas and nvidia-ml-py, but not the rest of the training stack. This
downloads, for CPython 3.12 on manylinux x86_64, the versions installed in this environment
of the packages missing there, so the GPU measures the stack LoRA Studio ships with.
bitsandbytes' wheel carries a library per CUDA release (43 MB); only the CPU and CUDA 13 ones
are kept (about 25 MiB for all the wheels). Another CUDA major needs its library added to
``KEEP_LIBRARIES``.

On the GPU machine, before the benchmark (docs/estimator.md, "Measured on a GPU"):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

MISSING_ON_DEVICE = (
    "transformers",
    "peft",
    "trl",
    "bitsandbytes",
    "datasets",
    "dill",
    "multiprocess",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "platformdirs",
)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
KEEP_LIBRARIES = ("libbitsandbytes_cpu.so", "libbitsandbytes_cuda130.so", "libbitsandbytes_cuda132.so")


def download(names: tuple[str, ...], dest: Path) -> None:
    pins = [f"{name}=={version(name)}" for name in names]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            *platforms,
            "--dest",
            str(dest),
            *pins,
        ],
        check=True,
    )


def slim_bitsandbytes(wheel: Path) -> None:
    """Drop the CUDA libraries the device's torch (CUDA 13) will not load; RECORD loses their lines too."""
    slim = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            name = Path(item.filename).name
            if name.startswith("libbitsandbytes_") and name not in KEEP_LIBRARIES:
                continue
            data = source.read(item)
            if name == "RECORD":
                lines = data.decode().splitlines(keepends=True)
                data = "".join(
                    ln
                    for ln in lines
                    if not (
                        Path(ln.split(",")[0]).name.startswith("libbitsandbytes_")
                        and Path(ln.split(",")[0]).name not in KEEP_LIBRARIES
                    )
                ).encode()
            target.writestr(item, data)
    slim.replace(wheel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=Path(".whl"))
    args = parser.parse_args()
    args.dest.mkdir(exist_ok=True)
    for old in args.dest.glob("*.whl"):  # one version of each: two stop the whole install there
        old.unlink()
    download(MISSING_ON_DEVICE, args.dest)
    for wheel in args.dest.glob("bitsandbytes-*.whl"):
        slim_bitsandbytes(wheel)
    total = sum(w.stat().st_size for w in args.dest.glob("*.whl"))
    print(f"{len(list(args.dest.glob('*.whl')))} wheels, {total / 2**20:.1f} MiB in {args.dest}")


if __name__ == "__main__":
    main()
