"""Published configs of real models, as plain config.json dictionaries, for the estimator's tests and bench."""

from __future__ import annotations

LLAMA_8B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "num_hidden_layers": 32,
    "tie_word_embeddings": False,
}
"""Llama 3 8B: 224 linear layers, an untied 128k-token head."""
