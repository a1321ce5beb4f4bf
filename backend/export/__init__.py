"""Turning a trained adapter into something people serve: merged safetensors, GGUF, Ollama, vLLM.

Everything here runs headless in a worker or the CLI and reports progress per tensor
through a callback, so the GUI can show it without knowing what is being written.
Outputs are built in a hidden staging folder and renamed into place when complete.
See docs/export.md.
"""
