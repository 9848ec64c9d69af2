"""Baseline for benchmarks/prepare_speed.py: data preparation the way the original project did it.

    python -m benchmarks.baseline_prepare_original EXPORT.json OUTPUT.csv

Re-implemented from the description in the issue, behaviour for behaviour:
the whole export is loaded with json.load; a parent keeps only its last
reply; list-form (formatted) text is skipped unless it sits in a reply
thread; consecutive messages of one author are glued together however far
apart; contexts are sliding windows of four Python list slots; rows go
through a pandas DataFrame with drop_duplicates and to_csv. Only single-chat
exports work (a full-account export has no top-level "messages").
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pandas as pd

Message = dict[str, Any]
Window = list[Message | None]


def _empty_window() -> Window:
    return [None, None, None, None]


def _plain(message: Message | None) -> str | None:
    if not message:
        return None
    text = message.get("text")
    if isinstance(text, list):
        text = "".join(part["text"] if isinstance(part, dict) else part for part in text)
    return text


def _contexts(messages: list[Message]) -> list[Window]:
    by_id: dict[int, Message] = {}
    last_reply: dict[int, int] = {}
    for message in messages:
        by_id[message["id"]] = message
        if "reply_to_message_id" in message:
            last_reply[message["reply_to_message_id"]] = message["id"]

    contexts: list[Window] = []
    window = _empty_window()
    in_threads: set[int] = set()
    for message in messages:
        text = message.get("text")
        if (
            message.get("type") != "message"
            or not text
            or not isinstance(text, str)
            or message["id"] in in_threads
        ):
            continue
        if "forwarded_from" in message:
            contexts.append(window)
            window = _empty_window()
            continue
        if message["id"] in last_reply:
            contexts.append(window)
            window = _empty_window()
            thread = _empty_window()
            current: int | None = message["id"]
            while current:
                thread.pop(0)
                thread.append(by_id[current])
                contexts.append(thread.copy())
                in_threads.add(current)
                current = last_reply.get(current)
            continue
        if window[-1] and message.get("from_id") == window[-1].get("from_id"):
            window[-1] = dict(window[-1], text=_plain(window[-1]) + "\n" + text)
            continue
        window.pop(0)
        window.append(message)
        contexts.append(window.copy())
    return contexts


def main(export_path: str, output_path: str) -> None:
    with open(export_path, encoding="utf-8") as f:
        messages = json.load(f).get("messages", [])
    rows = [
        {
            "context_3": _plain(c[0]),
            "context_2": _plain(c[1]),
            "context_1": _plain(c[2]),
            "response": _plain(c[3]),
        }
        for c in _contexts(messages)
        if any(c)
    ]
    frame = pd.DataFrame.from_records(rows)
    frame = frame.drop_duplicates()
    frame.to_csv(output_path, index=False)
    print(f"{len(messages)} messages, {len(frame)} rows")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
