# LoRA Studio: set-up and everyday commands. Every target installs what it needs first.
#
#   make demo    fine-tune the built-in model on the sample data and show the result
#   make test    lint, layering contracts, type checks and the default test suite
#
# Installs are pinned to the tested set in constraints.txt (pyproject.toml keeps the ranges); 'make lock'
# writes it again from the current .venv after a dependency changes.
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
PIN    := -c constraints.txt
QUANT  := $(VENV)/.gguf-quant

export QT_QPA_PLATFORM ?= offscreen

.PHONY: install demo test test-slow test-all lint clean screenshots lock

$(STAMP): pyproject.toml Makefile constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIN) $(TORCH)
	$(BIN)/python -m pip install --quiet $(PIN) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# llama-cpp-python compiles llama.cpp (10-25 minutes on 2 cores). It is built once per machine into WHEELS
# and installed from there. The build targets AVX2 rather than -march=native: on CPUs with AMX (Sapphire
# Rapids and later) llama.cpp's AMX path segfaults on quantized weights (ggml-org/llama.cpp#20824; seen here).
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CPP_CMAKE   := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
WHEELS ?= $(HOME)/.cache/lora-studio/wheels

$(QUANT): $(STAMP)
	ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="$(LLAMA_CPP_CMAKE)" $(BIN)/python -m pip wheel --quiet --no-deps --no-cache-dir \
	  -w $(WHEELS) llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(BIN)/python -m pip install --quiet --find-links $(WHEELS) llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(BIN)/python -m pip install --quiet $(PIN) -e '.[gguf-quant]'
	touch $(QUANT)

demo: $(STAMP)
	$(BIN)/lora-studio demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -m "not slow"

test-slow: $(QUANT)
	LORA_STUDIO_REQUIRE_LLAMA_CPP=1 $(BIN)/python -m pytest -m "slow or llama_cpp"

test-all: lint $(QUANT)
	LORA_STUDIO_REQUIRE_LLAMA_CPP=1 $(BIN)/python -m pytest

# Every page with real data (a short real training run the first time; a few minutes on 2 cores).
screenshots: $(STAMP)
	$(BIN)/python -m app.screenshots --out docs/screenshots

# The tested set, from what .venv holds now (torch and llama-cpp-python are chosen by the lines above).
lock: $(STAMP)
	{ sed -n '1,3p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable \
	  | grep -v -e '^torch==' -e '^llama_cpp_python==' | LC_ALL=C sort -f; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
