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
# OpenMP threads that spin while waiting steal the cores of a loaded machine (2-3x slower next to another
# job; `python -m pai.bench threads`): every command run from here waits passively unless told otherwise.
OMP_WAIT_POLICY ?= PASSIVE
export OMP_WAIT_POLICY
# JupyterLab refuses to start as root without --allow-root.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: setup data test repro bench lab paper clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP_ENV) $(BIN)/pip install --progress-bar off -q -e '.[test,ray]'
	$(BIN)/python -m ipykernel install --sys-prefix --name pai --display-name "Python (pai)" \
	  --env OMP_WAIT_POLICY PASSIVE >/dev/null
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
	@start=$$(date +%s); PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc repro \
	  $$(if [ -n "$(PROFILE)" ]; then $(BIN)/python -m pai.profiles targets $(PROFILE); fi) \
	  && echo "dvc repro finished in $$(( ($$(date +%s) - start) / 60 )) min $$(( ($$(date +%s) - start) % 60 )) s"

bench: setup data
	$(BIN)/python -m pai.bench all

# JupyterLab on the repository, the jupytext notebooks (notebooks/*.py) opening as notebooks on a double
# click (a default-viewer setting kept inside .venv); kernels start in notebooks/: run `%cd ..` first so
# that runs/ and figures/ resolve as under `dvc repro`.
lab: setup
	@mkdir -p $(dir $(LAB_SETTINGS))
	@test -f $(LAB_SETTINGS) || echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}' > $(LAB_SETTINGS)
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks

clean-venv:
	rm -rf $(VENV)
