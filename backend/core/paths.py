"""Where LoRA Studio keeps its files.

One root (the platform's user data folder, or ``LORA_STUDIO_HOME``) holds models,
datasets and jobs, so tests and portable installs can point everything elsewhere
with one variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "lora-studio"


def data_home() -> Path:
    """The root folder for models, datasets and jobs."""
    override = os.environ.get("LORA_STUDIO_HOME")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def models_dir() -> Path:
    return data_home() / "models"


def jobs_dir() -> Path:
    return data_home() / "jobs"


def datasets_dir() -> Path:
    return data_home() / "datasets"


def assets_dir() -> Path:
    """The repository's assets/ folder (sample data, icons)."""
    return Path(__file__).resolve().parents[2] / "assets"
