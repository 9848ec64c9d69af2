# One entry point for people and CI. Each job installs what it needs into .venv
# (once: a stamp per set of extras) and passes ARGS to its command.
#
#   make run                      model server + chat in the terminal (Telegram with BOT_TOKEN)
#   make prepare ARGS='--tg-history-path result.json --output-path data_output/chats.csv'
#   make train ARGS='--max_steps 100'
#   make evaluate ARGS='--model_name_or_path outputs/rudialogpt-medium-chat'
#   make retrain ARGS='--from-database sqlite:///bot.sqlite3 --models_dir models --max_steps 500'
#   make test                     lint and every test (PostgreSQL on 127.0.0.1:5432)
#
# torch: constraints-cpu.txt pins the version. Without an NVIDIA GPU (no nvidia-smi)
# torch comes from PyTorch's CPU index, since PyPI's Linux torch is the multi-GB CUDA
# build. It is installed on its own first, so only torch asks that index (pip retries
# an unreachable index for every package it looks up). PIP_ARGS, when given, replaces
# this choice: `make run PIP_ARGS=` takes PyPI's torch, and a torch already in .venv stays.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
TEST_EXTRAS := server,bot,bot-google,train,dev
ifeq ($(origin PIP_ARGS),undefined)
TORCH_CPU_INDEX := $(if $(shell command -v nvidia-smi 2>/dev/null),,https://download.pytorch.org/whl/cpu)
endif
PIP_ARGS ?=
# As if the venv were activated: tests call its console scripts (torchrun, hadolint, …).
export PATH := $(abspath $(VENV))/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help run prepare train evaluate retrain test lint pytest clean

help:
	@sed -n 's/^#   /  /p' $(firstword $(MAKEFILE_LIST))

# The stamp names the extras, so `make run` (server,bot), `make train` (train) and
# `make test` (all) each install once and none reinstalls another's set.
$(VENV)/.installed-%: pyproject.toml constraints-cpu.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(if $(TORCH_CPU_INDEX),$(PY) -m pip install -q --no-deps -c constraints-cpu.txt --extra-index-url $(TORCH_CPU_INDEX) torch)
	$(PY) -m pip install -q $(PIP_ARGS) -c constraints-cpu.txt -e '.[$*]'
	touch $@

# Ctrl-C is how the chat and the bot end: the trap keeps make from reporting it as "Error 130".
run: $(VENV)/.installed-server,bot
	@trap 'exit 0' INT; $(PY) -m bot.local $(ARGS)

prepare: $(VENV)/.installed-train
	$(PY) -m finetuning.prepare $(ARGS)

train: $(VENV)/.installed-train
	$(PY) -m finetuning.train $(ARGS)

evaluate: $(VENV)/.installed-train
	$(PY) -m finetuning.evaluate $(ARGS)

retrain: $(VENV)/.installed-train
	$(PY) -m finetuning.retrain $(ARGS)

lint: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

pytest: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) -m pytest $(ARGS)

test: lint pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
