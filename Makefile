# Two commands do all set-up on a fresh Linux machine:
#   make repro   -> creates .venv, installs pai, fetches Fashion-MNIST if apt can, runs `dvc repro`
#   make test    -> creates .venv, installs pai, runs the test suite
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# PROFILE=paper (or cpu) switches params/ to that profile before running; empty keeps params/ as they are.
PROFILE ?=
# The machine image keeps a CPU-only torch wheel in a local folder whose torchvision ops do not load;
# install the standard PyPI build instead (it runs on CPU), ignoring local wheel folders.
PIP_ENV := PIP_FIND_LINKS= PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: setup data test repro bench paper clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP_ENV) $(BIN)/pip install --progress-bar off -q -e '.[test,ray]'
	$(BIN)/python -m ipykernel install --sys-prefix --name pai --display-name "Python (pai)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

# Debian ships the real Fashion-MNIST; elsewhere pai.data falls back to data/ or a download.
data:
	@if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && [ ! -d data/fashion-mnist ] \
	   && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) || echo "apt could not install dataset-fashion-mnist"; \
	fi

test: setup data
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q tests

repro: setup data
	@if [ -n "$(PROFILE)" ]; then $(BIN)/python -m pai.profiles use $(PROFILE); fi
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc repro

bench: setup data
	$(BIN)/python -m pai.bench all

clean-venv:
	rm -rf $(VENV)
