# make train / make test create .venv on first use, then reuse it.
# torch and torchvision are pinned as a pair: other pairs fail to import torchvision here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH := torch==2.14.1 torchvision==0.29.1
ARGS ?= experiment=seed_autoencoder
PYTEST_ARGS ?=

.PHONY: help install fashion-mnist train test test-fast lint format clean
# A bare `make` lists the targets; each one's `## ` comment is its line in the list.
.DEFAULT_GOAL := help

help: ## list the targets, one line each (what a bare `make` does)
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "make %-14s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

$(BIN)/.torch-installed:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(TORCH)
	touch $@

$(BIN)/.convae-installed: $(BIN)/.torch-installed pyproject.toml
	$(BIN)/python -m pip install -e '.[dev]' $(TORCH)
	touch $@

install: $(BIN)/.convae-installed fashion-mnist ## .venv with torch and convae[dev], made on first use

# Full Fashion-MNIST from Debian's dataset-fashion-mnist (data.source=fashion_mnist), where
# apt can install it; nothing needs it to build or test.
FASHION := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
fashion-mnist: ## as root with apt: Debian's dataset-fashion-mnist (data.source=fashion_mnist)
	@if [ ! -f $(FASHION) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) \
		|| echo "note: could not install dataset-fashion-mnist; data.source=fashion_mnist needs it"; \
	fi

train: install ## convae-train $(ARGS), by default experiment=seed_autoencoder
	$(BIN)/convae-train $(ARGS)

lint: install ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# make test runs every test; make test-fast leaves out the slow ones (console scripts in
# subprocesses, end-to-end training: pytest's "slow" marker) and takes about a minute.
# One pytest-xdist worker per core this process may use, each pinned to its own core
# (tests/helpers.py), so the workers' training runs never share one; WORKERS=1 runs serially.
# The 25 slowest tests are listed at the end, so every CI log says where the time went.
WORKERS ?= $(shell nproc)
PYTEST := $(BIN)/pytest -n $(WORKERS) --dist worksteal --durations=25

test: lint ## lint, then every test on pytest-xdist workers (what CI runs)
	$(PYTEST) $(PYTEST_ARGS)

test-fast: lint ## lint, then the tests not marked slow (about a minute)
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

format: install ## ruff format and ruff check --fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: ## remove .venv and the pytest, ruff and hypothesis caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
