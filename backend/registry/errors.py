"""The registry's one error type: a refusal phrased for the person who asked."""

from __future__ import annotations


class RegistryError(ValueError):
    """An action the registry refuses, with what to do instead in ``hint``."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
