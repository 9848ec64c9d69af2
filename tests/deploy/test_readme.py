"""The README: its top, its configuration table against the Settings classes, its commands."""

from __future__ import annotations

import importlib.util
import re

import pytest
from dotenv import dotenv_values

from tests.deploy.config_table import variables
from tests.deploy.support import ENV_EXAMPLE, ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def table_rows() -> dict[str, list[str]]:
    """Configuration table: variable -> its other cells."""
    rows: dict[str, list[str]] = {}
    for line in section("Configuration").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`([A-Z0-9_<>]+)`", cells[0])
        if line.startswith("|") and name:
            rows[name.group(1)] = cells[1:]
    return rows


def test_top_is_the_title_then_the_two_commands() -> None:
    head = README.split("\n## ", 1)[0]
    assert head.startswith("# ruDialoGPT Telegram bot\n")
    block = re.search(r"```bash\n(.*?)```", head, re.DOTALL)
    assert block, "the run and test commands, in a bash block, before the first section"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make run", "make test"]


@pytest.mark.parametrize(
    "title", ["Deploy with Docker Compose", "Train your own model", "Architecture", "Troubleshooting"]
)
def test_sections(title: str) -> None:
    assert section(title).strip()


def test_troubleshooting_covers_the_usual_problems() -> None:
    text = section("Troubleshooting")
    for topic in ("No GPU", "first start", "TELEGRAM_API_URL", "Voice", "ASR_MODEL"):
        assert topic in text, topic


@pytest.mark.parametrize("name", sorted(variables()))
def test_configuration_table_has_every_setting_with_its_default_and_reader(name: str) -> None:
    rows = table_rows()
    assert name in rows, f"README's configuration table lacks {name} (python -m tests.deploy.config_table)"
    default, readers = rows[name][0], rows[name][1]
    for service, text in variables()[name].items():
        assert service in readers, f"{name}: read by {service}"
        assert text in default, f"{name}: default is {text}, README says {default}"


def test_configuration_table_covers_compose_and_env_example(compose: dict) -> None:
    rows = table_rows()
    passed = {v for s in ("bot", "model_server") for v in compose["services"][s]["environment"]}
    documented = set(dotenv_values(ENV_EXAMPLE)) | {"COMPOSE_FILE"}
    missing = {v for v in passed | documented if v not in rows and not v.startswith("GEN_")}
    assert not missing, missing
    assert "GEN_<FIELD>" in rows


def test_python_entry_points_named_in_the_readme_exist() -> None:
    modules = set(re.findall(r"python -m ([a-z_.]+)", README)) | set(
        re.findall(r"-m ([a-z_]+\.[a-z_.]+)", README)
    )
    assert {"bot", "model_server", "finetuning.prepare_messages", "finetuning.finetuning"} <= modules
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module


def test_repository_files_named_in_the_readme_exist() -> None:
    paths = set(
        re.findall(
            r"`((?:finetuning|bot|model_server|dialogue)/[\w./-]+|docker-compose(?:\.cpu)?\.yaml)`", README
        )
    )
    paths |= set(re.findall(r"sbatch ((?:\w+/)+[\w.-]+)", README))
    for path in paths:
        assert (ROOT / path).exists(), path
