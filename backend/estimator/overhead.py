"""Memory the GPU needs beyond the tensors: the caching allocator's reserve and the CUDA context.

PyTorch's caching allocator keeps freed blocks for reuse, so its peak *reserved* memory
(what the GPU must really hold) exceeds the peak *allocated* by fragmentation: 8-38% in
published sweeps (vram_points.md). The CUDA context (driver state, kernels of torch,
bitsandbytes and Triton) lies outside PyTorch's view altogether. Both constants are
conservative defaults; a measurement on the user's GPU replaces them (calibration.py).
"""

from __future__ import annotations

from backend.estimator.knobs import Knobs
from backend.estimator.memory import StepMemory
from backend.estimator.stack import Stack
from backend.models.shapes import TORCH_DTYPE_BYTES, ModelShapes

CUDA_CONTEXT = 512 * 1024**2
"""Driver context plus loaded kernels. Measured 141 MiB on a T4 with torch 2.10 and lazy loading
(fitcheck-llm 0.3.1 data); 300 MiB to 2 GB elsewhere (vram_points.md), so 512 MiB until calibrated."""
FRAGMENTATION = 0.2
"""Share of the step's changing memory (peak minus what stays resident) that ends up as
unusable cached blocks: the smallest share, in steps of 0.05, that keeps every published row
(twelve T4 rows at 1 x 1024 tokens, four A100 rows at 4-8 x 4096) under-predicted by no more
than 5%; 0.15 fitted the T4 rows alone but missed the A100 rows by up to 7.7%."""
LARGEST_BLOCK_SHARE = 0.5
"""Share of the largest temporary block that stays reserved while smaller requests reuse it."""
FREED_AT_LOAD_SHARE = 0.3
"""Share of the blocks freed while loading (16-bit originals of quantized or upcast weights) that
later requests do not reuse."""


def allocator_reserve(shapes: ModelShapes, knobs: Knobs, stack: Stack, step: StepMemory) -> int:
    """Estimated peak reserved minus peak allocated.

    Fitted to published rows: twelve T4 rows of fitcheck-llm 0.3.1 and four A100 rows of
    fms-acceleration (tests/test_estimator_published.py prints the fit); unmeasured for the
    installed stack until bench/vram_accuracy.py runs on a GPU.
    """
    dynamic = max(0, step.peak - step.persistent)
    largest = max(step.largest_temporary, step.dequant, _largest_activation(shapes, knobs, step))
    load = TORCH_DTYPE_BYTES[knobs.compute_dtype]
    if stack.upcasts(knobs.quant):
        freed = (shapes.parameter_count - shapes.linear_params) * load
        # Recasting the head and embeddings to 16 bits frees their fp32 copies too.
        freed += 4 * shapes.embedding_head_params if stack.recast_embeddings_16bit else 0
    elif knobs.quant != "none":
        freed = 2 * load * shapes.largest_linear
    else:
        freed = 0
    return int(FRAGMENTATION * dynamic + LARGEST_BLOCK_SHARE * largest + FREED_AT_LOAD_SHARE * freed)


def _largest_activation(shapes: ModelShapes, knobs: Knobs, step: StepMemory) -> int:
    """The widest single activation: one MLP intermediate of the micro-batch."""
    return TORCH_DTYPE_BYTES[knobs.compute_dtype] * shapes.intermediate * step.tokens
