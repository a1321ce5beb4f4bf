# LoRA Studio: set-up and everyday commands. Every target installs what it needs first.
#
#   make demo    fine-tune the built-in model on the sample data and show the result
#   make test    lint, layering contracts and the default test suite
#
# torch is installed before the project so the right build is chosen per machine:
# TORCH defaults to the 2.13.0 release (a CPU wheel where one is provided locally, the
# CUDA build from PyPI on Linux otherwise). Override it, e.g. for a CPU-only laptop:
#   make demo TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export QT_QPA_PLATFORM ?= offscreen

.PHONY: install demo test test-slow test-all lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/lora-studio demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

test-all: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
