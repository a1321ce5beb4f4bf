"""llama.cpp's K-quants (Q4_K_M, Q5_K_M, Q6_K) through the optional ``llama-cpp-python`` package.

``gguf`` can only dequantize K-quants, so they are made by llama.cpp itself from an F16 or
BF16 file this converter wrote. The package is source-only on PyPI and builds llama.cpp on
install, so it is an optional extra (``gguf-quant``) rather than a dependency.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from types import ModuleType

from backend.export.errors import ExportError

K_QUANTS = {"q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}
"""LLAMA_FTYPE_MOSTLY_* values, which are also what general.file_type says."""
INSTALL_HINT = (
    "Install the optional extra: pip install 'lora-studio[gguf-quant]' (it compiles llama.cpp: needs CMake and a "
    "C++ compiler, and takes 10-25 minutes). F16, BF16 and Q8_0 need nothing extra."
)


def llama_cpp_module() -> ModuleType:
    """The llama_cpp module, or an ExportError saying how to get it."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ExportError(
            "Q4_K_M, Q5_K_M and Q6_K are made by llama.cpp, and llama-cpp-python is not installed.",
            hint=INSTALL_HINT,
            error_type="dependency",
        ) from exc
    module: ModuleType = llama_cpp  # typed as Any: an optional extra
    return module


def quantize_file(source: Path, target: Path, file_type: str) -> None:
    """Quantize ``source`` (F16/BF16 GGUF) into ``target`` with llama.cpp; rows not a multiple of 256
    fall back to llama.cpp's own choice (Q5_0/Q5_1/Q8_0)."""
    llama_cpp = llama_cpp_module()
    params = llama_cpp.llama_model_quantize_default_params()  # the struct's fields change between versions
    params.ftype = K_QUANTS[file_type]
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if status != 0 or not target.is_file():
        raise ExportError(
            f"llama.cpp could not quantize the model to {file_type.upper()} (status {status}).",
            hint="Check worker.log for llama.cpp's message; F16 and Q8_0 exports do not need llama.cpp.",
            error_type="internal",
        )
