# One entry point for people and CI. Everything installs into .venv.
#
# torch: constraints-cpu.txt pins the version. Where pip has no local CPU build of
# it (an ordinary machine), add PyTorch's CPU index so the pin does not pull the
# multi-GB CUDA build:  make test PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_ARGS ?=
TEST_EXTRAS := server,bot,bot-google,train,dev
# As if the venv were activated: tests call its console scripts (torchrun, hadolint, …).
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: run test lint pytest clean

# The stamp names the extras, so `make run` (server,bot) and `make test` (all) each
# install once and neither reinstalls the other's set.
$(VENV)/.installed-%: pyproject.toml constraints-cpu.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PIP_ARGS) -c constraints-cpu.txt -e '.[$*]'
	touch $@

run: $(VENV)/.installed-server,bot
	$(PY) -m bot.local_run

lint: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

pytest: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) -m pytest

test: lint pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
