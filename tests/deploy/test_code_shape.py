"""Product modules stay small: at most 300 lines, functions at most 60 (benchmarks excepted)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "model_server", "dialogue", "finetuning")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
# A run_clm.py-style straight-line main: one comment per stage, read top to bottom.
STRAIGHT_LINE_MAINS = {("finetuning/train.py", "main")}


def product_modules() -> list[Path]:
    return sorted(
        p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts
    )


def test_no_product_module_is_over_300_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in product_modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_no_product_function_is_over_60_lines() -> None:
    long = {}
    for path in product_modules():
        name = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                # From the signature's first line (decorators excluded) to the body's last.
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and (name, node.name) not in STRAIGHT_LINE_MAINS:
                    long[f"{name}:{node.name}"] = lines
    assert not long, long
