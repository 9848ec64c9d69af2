"""Telegram Desktop exports written by the tests, and a way to run data preparation on them."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from finetuning.prepare.command import main

START = 1_700_000_000  # unix time of the first message
USERS = {"anna": "user1001", "boris": "user1002", "vera": "user1003", "gleb": "user1004"}


def msg(
    message_id: int,
    who: str,
    text: Any,
    *,
    minute: float | None = None,
    reply_to: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A user message as Telegram Desktop writes it; ``minute`` defaults to the id."""
    when = START + int(60 * (message_id if minute is None else minute))
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "date": "2023-11-14T22:13:20",
        "date_unixtime": str(when),
        "from": who.capitalize(),
        "from_id": USERS.get(who, who),
    }
    if reply_to is not None:
        message["reply_to_message_id"] = reply_to
    message["text"] = text
    message["text_entities"] = []
    message.update(extra)
    return message


def service(message_id: int) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "service",
        "date": "2023-11-14T22:13:20",
        "date_unixtime": str(START + 60 * message_id),
        "actor": "Anna",
        "actor_id": "user1001",
        "action": "pin_message",
        "message_id": 1,
        "text": "",
        "text_entities": [],
    }


def chat(messages: list[dict[str, Any]], name: str = "Чат", chat_id: int = 42) -> dict[str, Any]:
    return {"name": name, "type": "private_supergroup", "id": chat_id, "messages": messages}


def account(*chats: dict[str, Any]) -> dict[str, Any]:
    """A full-account export: profile data first, then every chat."""
    return {
        "about": "Here is the data you requested.",
        "personal_information": {"user_id": 1001, "first_name": "Anna", "phone_number": "+7 999 000 00 00"},
        "contacts": {"about": "", "list": [{"first_name": "Boris", "phone_number": "+79990000001"}]},
        "chats": {"about": "", "list": list(chats)},
    }


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def prepare(
    tmp_path: Path, *exports: Any, args: tuple[str, ...] = (), name: str = "out.csv"
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Run data preparation on the exports (dicts are written to files first); rows and summary."""
    argv: list[str] = []
    for i, export in enumerate(exports):
        path = export if isinstance(export, Path) else write_json(tmp_path / f"export{i}.json", export)
        argv += ["--tg-history-path", str(path)]
    output = tmp_path / name
    assert main([*argv, "--output-path", str(output), "--no-progress", *args]) == 0
    with output.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    summary = json.loads(output.with_name(output.stem + ".summary.json").read_text(encoding="utf-8"))
    return rows, summary


def as_lists(rows: list[dict[str, str]]) -> list[list[str]]:
    """Rows as [context..., response], oldest first, empty cells left out."""
    return [[cell for cell in row.values() if cell] for row in rows]
