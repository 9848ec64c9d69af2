"""README and docs/: the configuration table matches the Settings classes, the commands they show run.

A shown command is checked in its dry form: ``make -n`` with the same
variables, ``python -m MODULE --help`` (and every ``--option`` shown must be
one that MODULE accepts), ``bash -n`` for scripts, ``docker compose … config``
for the compose files named.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from tests.deploy.config_table import variables
from tests.deploy.support import ENV_EXAMPLE, FILLED_IN, ROOT, WEBHOOK_FILLED_IN, make_env, run_compose

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONFIGURATION = ROOT / "docs" / "configuration.md"


def table_rows() -> dict[str, list[str]]:
    """Configuration table: variable -> its other cells."""
    rows: dict[str, list[str]] = {}
    for line in CONFIGURATION.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`([A-Z0-9_<>]+)`", cells[0])
        if line.startswith("|") and name:
            rows[name.group(1)] = cells[1:]
    return rows


def test_configuration_table_matches_the_settings_classes() -> None:
    rows = table_rows()
    problems = []
    for name, readers in variables().items():
        if name not in rows:
            problems.append(f"{name} is missing (python -m tests.deploy.config_table prints its row)")
            continue
        default, read_by = rows[name][0], rows[name][1]
        for service, text in readers.items():
            if service not in read_by:
                problems.append(f"{name}: read by {service}, the table says {read_by}")
            if text not in default:
                problems.append(f"{name}: the default is {text}, the table says {default}")
    assert not problems, "\n".join(problems)


def test_configuration_table_covers_compose_and_env_example(compose: dict[str, Any]) -> None:
    rows = table_rows()
    passed = {v for s in ("bot", "model_server") for v in compose["services"][s].get("environment") or {}}
    documented = set(dotenv_values(ENV_EXAMPLE)) | {"COMPOSE_FILE"}
    missing = {v for v in passed | documented if v not in rows and not v.startswith("GEN_")}
    assert not missing, missing
    assert "GEN_<FIELD>" in rows


# --- links ----------------------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {github_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_links_and_repository_paths_lead_somewhere(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"https?://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        assert linked.exists(), f"{doc.name} links to {target}, which does not exist"
        if anchor:
            assert anchor in anchors(linked), f"{doc.name}: {linked.name} has no heading #{anchor}"
    named = re.findall(
        r"`((?:finetuning|bot|model_server|dialogue|benchmarks|docs)/[\w./-]+|docker-compose(?:\.cpu)?\.yaml)`",
        text,
    )
    for path in named:
        assert (ROOT / path).exists(), f"{doc.name} names {path}, which does not exist"


# --- commands -------------------------------------------------------------------------------------


def shown_commands() -> list[tuple[str, list[str]]]:
    """(document, words) for every command line in the docs' ``bash`` blocks, comments dropped."""
    commands = []
    for doc in DOCS:
        for block in re.findall(r"```bash\n(.*?)```", doc.read_text(encoding="utf-8"), re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words:
                    commands.append((doc.name, words))
    return commands


@functools.cache
def module_help(module: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"python -m {module} --help: {result.stderr[-2000:]}"
    return result.stdout


def check_module(module: str, args: list[str]) -> None:
    """The module has a command line, and every option the docs pass to it is one of its options."""
    accepted = set(re.findall(r"--[\w-]+", module_help(module)))
    shown = {arg.split("=", 1)[0] for arg in args if arg.startswith("--")}
    assert shown <= accepted, f"python -m {module} has no {sorted(shown - accepted)}"


def check_make(words: list[str]) -> None:
    env = make_env()
    make_at = words.index("make")
    env.update(dict(word.split("=", 1) for word in words[:make_at]))
    result = subprocess.run(
        ["make", "-n", *words[make_at + 1 :]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for value in (word.split("=", 1)[1] for word in words if word.startswith("ARGS=")):
        [line] = [line for line in result.stdout.splitlines() if line.endswith(value)]
        module = re.search(r" -m ([\w.]+) ", line)
        assert module, f"make passes ARGS to no python -m command: {line}"
        check_module(module.group(1), shlex.split(value))


def check_compose(words: list[str]) -> None:
    """The compose files a ``docker compose`` line names are valid together."""
    at = words.index("compose") + 1
    files = []
    while at < len(words) and words[at] == "-f":
        files.append(words[at + 1])
        at += 2
    env = FILLED_IN | (WEBHOOK_FILLED_IN if "docker-compose.webhook.yaml" in files else {})
    result = run_compose(files or ["docker-compose.yaml"], "config", "--quiet", env=env, env_file=ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr


def check_script(words: list[str]) -> None:
    [script] = [word for word in words if word.endswith(".sh")]
    result = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def check(words: list[str]) -> None:
    program = next(word for word in words if "=" not in word)
    if program == "make":
        check_make(words)
    elif program in ("python", "torchrun"):
        at = words.index("-m")
        check_module(words[at + 1], words[at + 2 :])
    elif program == "docker":
        check_compose(words)
    elif program in ("bash", "sbatch"):
        check_script(words)
    elif program == "cp":
        assert (ROOT / words[-2]).exists(), words[-2]
    else:
        raise AssertionError(f"no dry form known for {shlex.join(words)!r}: teach tests/deploy/test_docs.py")


@pytest.mark.parametrize(
    ("doc", "words"), shown_commands(), ids=lambda v: shlex.join(v)[:60] if isinstance(v, list) else v
)
def test_shown_command_runs(doc: str, words: list[str]) -> None:
    check(words)
