"""Errors raised by the model store, worded for the person who has to fix them."""

from __future__ import annotations


class ModelError(Exception):
    """Base class: anything the model store cannot do, with a message a user can act on."""


class ModelImportError(ModelError):
    """An import failed; nothing was left behind in the store."""


class ModelNotFoundError(ModelError, LookupError):
    """A model name or path does not lead to a usable model."""
