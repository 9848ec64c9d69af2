# One entry point for people and CI. Everything installs into .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= server,bot,train,dev

.PHONY: install run test lint pytest clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints-cpu.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints-cpu.txt -e '.[$(EXTRAS)]'
	touch $@

run: install
	$(PY) -m bot.local_run

lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy

pytest: install
	$(PY) -m pytest

test: lint pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
