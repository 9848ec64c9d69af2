"""A single-chat export as Telegram Desktop lays it out, decoded a block of messages at a time.

Telegram Desktop writes one key per line, one space of indent per level, so
every message of a chat export is an object at two spaces, and one message
ends where ``"\\n  },\\n  {"`` starts the next. A raw newline never occurs
inside a JSON string, so that seam can only be structure. The messages are
cut at the last seam of each megabyte read and the block is decoded by
msgspec into :class:`Message`, which keeps only the fields preparation reads:
skipping the rest (``text_entities`` repeats every text) is what makes this
several times faster than building every message with ijson.

Whatever does not decode as cut (broken JSON, or a file laid out otherwise)
goes back to the reader's ijson path, which parses the file from the start,
skips the messages already given out and reports a broken file's exact
position. So the result never depends on the layout, only the speed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import msgspec


class Message(msgspec.Struct):
    """The fields of a raw message that preparation reads; absent ones are None.

    ``forwarded_from`` is UNSET when absent: a forward from a hidden account
    has it as null.
    """

    id: Any = None
    type: Any = None
    from_id: Any = None
    text: Any = None
    date_unixtime: Any = None
    date: Any = None
    reply_to_message_id: Any = None
    forwarded_from: Any = msgspec.UNSET


_START = b'\n "messages": [\n  {'
_SEAM = b"\n  },\n  {"
_HEAD_BYTES = 1 << 16
_BLOCK_BYTES = 1 << 20
# A message is at most a few kilobytes; far more without a seam is another layout.
_MOST_PENDING = 1 << 24
_messages = msgspec.json.Decoder(list[Message]).decode
_anything = msgspec.json.Decoder().decode


class _Rest(msgspec.Struct):
    """The export from inside its messages list to its end, read as ``{"m": [`` + that."""

    m: list[Message]


class _RestOfAnything(msgspec.Struct):
    m: list[Any]


_rest = msgspec.json.Decoder(_Rest).decode
_rest_of_anything = msgspec.json.Decoder(_RestOfAnything).decode


class _OtherLayout(Exception):
    pass


def as_message(value: Any) -> Message | None:
    """A message parsed some other way (a dict) as a Message; None when it is not an object."""
    try:
        return msgspec.convert(value, Message)
    except msgspec.ValidationError:
        return None


def laid_out_messages(
    raw: BinaryIO,
    on_bytes: Callable[[int], object] | None,
    fallback: Callable[[int], Iterator[Message | None]],
) -> Iterator[Message | None] | None:
    """The messages of a chat export in Telegram's layout, or None when its start is laid out otherwise.

    ``fallback(n)`` must give the messages after the first ``n`` another way;
    it takes over when a block does not decode.
    """
    raw.seek(0)
    head = raw.read(_HEAD_BYTES)
    at = head.find(_START)
    if at < 0:
        return None
    if on_bytes is not None:
        on_bytes(len(head))
    return _blocks(raw, head[at + len(_START) - 4 :], on_bytes, fallback)


def _blocks(
    raw: BinaryIO,
    pending: bytes,
    on_bytes: Callable[[int], object] | None,
    fallback: Callable[[int], Iterator[Message | None]],
) -> Iterator[Message | None]:
    given = 0
    try:
        while block := raw.read(_BLOCK_BYTES):
            if on_bytes is not None:
                on_bytes(len(block))
            pending += block
            seam = pending.rfind(_SEAM)
            if seam < 0:
                if len(pending) > _MOST_PENDING:
                    raise _OtherLayout
                continue
            messages = _decoded(b"[" + pending[: seam + 4] + b"]")
            pending = pending[seam + 5 :]
            given += len(messages)
            yield from messages
        # The last messages, and whatever follows the list up to the file's end.
        messages = _decoded(b'{"m":[' + pending, rest=True)
    except (msgspec.DecodeError, _OtherLayout):
        yield from fallback(given)
        return
    yield from messages


def _decoded(data: bytes, rest: bool = False) -> list[Message | None]:
    try:
        return _rest(data).m if rest else _messages(data)  # type: ignore[return-value]
    except msgspec.ValidationError:
        # Something in the list is not an object: decoded as it is, it becomes None.
        values = _rest_of_anything(data).m if rest else _anything(data)
        return [as_message(value) for value in values]
