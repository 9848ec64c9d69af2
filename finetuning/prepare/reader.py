"""Stream the messages of Telegram Desktop JSON exports, one chat at a time.

Two shapes are read: a single chat (``{"name", "type", "id", "messages": [...]}``)
and a full-account export (``{"chats": {"list": [chat, ...]}}``, plus
``left_chats``). Messages are parsed one by one with ijson, so memory does not
grow with the file: a chat export in Telegram Desktop's own layout a block
at a time (desktop_decoder.py), anything else with ijson. Either way a message comes
as a :class:`Message` (None for an element that is not an object). Bad input
raises :class:`ExportError` naming the file and, for broken JSON, the
position of the error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import ijson

from finetuning.prepare.desktop_decoder import Message, as_message, laid_out_messages

# The pure-Python backend works but is about 20 times slower.
FAST_BACKENDS = ("yajl2_c",)
_ACCOUNT_LISTS = ("chats.list.item", "left_chats.list.item")
_SCALARS = ("string", "number", "boolean", "null")


class ExportError(Exception):
    """A file that cannot be read as a Telegram export; the message is one line."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass
class Chat:
    """One chat of an export; ``messages`` must be consumed before the next chat."""

    title: str
    # The export's chat type: "private_supergroup", "public_channel", "personal_chat", ...
    kind: str
    messages: Iterator[Message | None]


class _Reader:
    """A binary file that counts what it hands out, for progress and error positions.

    After ``slow_after`` bytes it hands out one byte per read, so that a parse
    error surfaces at its exact byte.
    """

    def __init__(
        self, raw: BinaryIO, on_bytes: Callable[[int], object] | None = None, slow_after: int | None = None
    ) -> None:
        self.raw = raw
        self.position = 0
        self.on_bytes = on_bytes
        self.slow_after = slow_after

    def read(self, size: int = -1) -> bytes:
        if size and self.slow_after is not None and self.position >= self.slow_after:
            size = 1
        data = self.raw.read(size)
        self.position += len(data)
        if self.on_bytes is not None:
            self.on_bytes(len(data))
        return data


def warn_if_slow_backend() -> None:
    if ijson.backend not in FAST_BACKENDS:
        print(
            f"warning: ijson uses its slow {ijson.backend} backend; install ijson with yajl2_c",
            file=sys.stderr,
        )


def read_chats(path: Path, on_bytes: Callable[[int], object] | None = None) -> Iterator[Chat]:
    """The chats of one export file, each streaming its raw message objects."""
    try:
        raw = path.open("rb")
    except OSError as e:
        raise ExportError(path, e.strerror or str(e)) from None
    with raw:
        if raw.seek(0, 2) == 0:
            raise ExportError(path, "empty file, expected a Telegram chat export (JSON)")
        raw.seek(0)
        reader = _Reader(raw)
        try:
            shape, header = _detect_shape(path, ijson.parse(reader))
            if shape == "chat":
                messages = laid_out_messages(raw, on_bytes, partial(_parsed_messages, path, raw))
                if messages is None:
                    messages = _parsed_messages(path, raw, 0, on_bytes)
                yield Chat(_title(header), _kind(header), messages)
            else:
                raw.seek(0)
                reader = _Reader(raw, on_bytes)
                for chat in _account_chats(ijson.parse(reader)):
                    yield Chat(chat.title, chat.kind, _guarded(path, reader, chat.messages))
        except (ijson.JSONError, UnicodeDecodeError) as e:
            raise ExportError(path, _describe_json_error(path, reader.position, e)) from None


def _parsed_messages(
    path: Path, raw: BinaryIO, skip: int, on_bytes: Callable[[int], object] | None = None
) -> Iterator[Message | None]:
    """A chat export's messages after the first ``skip``, parsed by ijson from the start."""
    raw.seek(0)
    reader = _Reader(raw, on_bytes)
    messages = map(as_message, ijson.items(reader, "messages.item"))
    return _guarded(path, reader, islice(messages, skip, None))


def _guarded(path: Path, reader: _Reader, messages: Iterator[Message | None]) -> Iterator[Message | None]:
    """``messages``, with parse errors turned into an ExportError that says where."""
    try:
        yield from messages
    except (ijson.JSONError, UnicodeDecodeError) as e:
        raise ExportError(path, _describe_json_error(path, reader.position, e)) from None


def _detect_shape(path: Path, events: Iterator[tuple[str, str, Any]]) -> tuple[str, dict[str, Any]]:
    """ "chat" or "account", from the top-level keys; the header holds name, id, type."""
    first = next(events)
    if first[1] != "start_map":
        raise ExportError(path, "not a Telegram export: the top level is not a JSON object")
    header: dict[str, Any] = {}
    for prefix, event, value in events:
        if prefix == "" and event == "map_key":
            if value == "messages":
                kind = next(events, ("", "", None))[1]
                if kind != "start_array":
                    raise ExportError(path, 'not a Telegram export: "messages" is not a list')
                return "chat", header
            if value == "chats":
                return "account", header
        elif prefix in ("name", "id", "type") and event in _SCALARS:
            header[prefix] = value
    raise ExportError(path, 'not a Telegram export: no "messages" list and no "chats" section')


def _account_chats(events: Iterator[tuple[str, str, Any]]) -> Iterator[Chat]:
    header: dict[str, Any] = {}
    for prefix, event, value in events:
        if prefix in _ACCOUNT_LISTS and event == "start_map":
            header = {}
        elif event == "start_array" and prefix.endswith(".messages") and prefix[:-9] in _ACCOUNT_LISTS:
            # Messages are built by ijson's C builder from events routed here,
            # so that the chat boundaries stay visible.
            messages = ijson.items(_array_events(events, prefix), prefix + ".item")
            yield Chat(_title(header), _kind(header), map(as_message, messages))
            for _ in messages:  # whatever the consumer left
                pass
        elif event in _SCALARS and "." in prefix:
            owner, _, key = prefix.rpartition(".")
            if owner in _ACCOUNT_LISTS and key in ("name", "id", "type"):
                header[key] = value


def _array_events(events: Iterator[tuple[str, str, Any]], prefix: str) -> Iterator[tuple[str, str, Any]]:
    """The events inside the array at ``prefix``; stops after its end."""
    for item in events:
        if item[1] == "end_array" and item[0] == prefix:
            return
        yield item


def _title(header: dict[str, Any]) -> str:
    name = header.get("name")
    return str(name) if name is not None else f"chat {header.get('id', '?')}"


def _kind(header: dict[str, Any]) -> str:
    kind = header.get("type")
    return kind if isinstance(kind, str) else ""


def _describe_json_error(path: Path, chunk_end: int, error: Exception) -> str:
    """One line with the exact position: the file is parsed again, byte by byte near the error."""
    position = chunk_end
    with path.open("rb") as raw:
        # The error lies in the last chunk read (ijson reads 64 KiB at a time).
        reader = _Reader(raw, slow_after=max(0, chunk_end - 64 * 1024))
        try:
            for _ in ijson.basic_parse(reader):
                pass
        except (ijson.JSONError, UnicodeDecodeError) as e:
            error = e
            position = reader.position
    line, column = _line_and_column(path, position)
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "premature EOF" in reason:
        return f"truncated JSON: the file ends at line {line}, column {column} (byte {position})"
    return f"invalid JSON at line {line}, column {column} (byte {position}): {reason}"


def _line_and_column(path: Path, position: int) -> tuple[int, int]:
    line, last_newline, offset = 1, -1, 0
    with path.open("rb") as raw:
        while offset < position:
            chunk = raw.read(min(1 << 20, position - offset))
            if not chunk:
                break
            count = chunk.count(b"\n")
            if count:
                line += count
                last_newline = offset + chunk.rindex(b"\n")
            offset += len(chunk)
    return line, position - last_newline - 1
