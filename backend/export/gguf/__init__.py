"""LoRA Studio's own HF → GGUF converter, built on the ``gguf`` package (writer, constants, name maps).

``arch`` knows each architecture's metadata and tensor quirks, ``vocab`` the tokenizer,
``tensors`` the per-tensor layout and types, ``convert`` writes the file tensor by tensor,
``quantize`` adds llama.cpp's K-quants when llama-cpp-python is installed, and ``verify``
reads the result back and compares its logits with the source model.
"""
