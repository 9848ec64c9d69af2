"""First stage of data preparation: export files -> compact message records.

Every message of every chat is either dropped here (counted by reason) or
becomes a record ``(id, author, reply_to, unix_time)`` with its text
alongside (:class:`RecordBatch`): joined to one string, normalised and
cleaned of contacts (:func:`export_records`), then of participants' names
(:func:`clean_records`). A chat
starts with :data:`NEW_CHAT`; a forwarded post, which ends the conversation
around it, is :data:`BREAK`. The author is the user, or in a group the group
or channel that wrote as itself (an anonymous admin, a post "sent as
channel"), so that they merge and alternate like a person; a broadcast
channel's own export has no conversation and is skipped.

Records travel in batches, so that every stage loops over lists rather than
pulling each record through a chain of generators. :func:`records_in_helper`
runs export_records in a second process that sends the batches to the
caller while the caller replaces names and builds and writes rows: that
split halves the work between the two processes (measured on prepare_speed's
export: about 2 s of CPU time each).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

from msgspec import UNSET

from dialogue.anonymize import Names, anonymized_texts
from dialogue.format import CONTEXT_SIZE, normalize
from finetuning.prepare.cleaning import join_text
from finetuning.prepare.desktop_decoder import Message
from finetuning.prepare.names import participant_names
from finetuning.prepare.reader import ExportError, read_chats

# (id, author, reply_to, unix_time); its text is kept apart (RecordBatch).
Record = tuple[int, str, "int | None", "float | None"]
NEW_CHAT: tuple[()] = ()
BREAK = None
Entry = Record | None | tuple[()]
# A message's author: a user, or the group or channel that writes as itself.
_AUTHOR_PREFIXES = ("user", "channel", "chat")
# Records per batch: large enough that per-batch costs (joining texts for
# the scans, pickling to the caller) vanish, small enough that a batch stays
# in the CPU caches between the stages (measured: 8192 was 4% slower).
BATCH = 1024
PIPE_BYTES = 1 << 20


class RecordBatch(NamedTuple):
    """Records (and markers) with their texts alongside: ``texts[i]`` is the text of ``records[i]``.

    Markers have "". Texts are a list of their own so that a batch's texts
    can be joined, scanned and replaced in one go, and sent to another
    process as one string. ``mentioned`` holds the names of the batch's
    ``mention_name`` entities, for the name anonymisation of the texts.
    """

    records: list[Entry]
    texts: list[str]
    mentioned: list[str]


@dataclass(frozen=True)
class SampleOptions:
    context_size: int = CONTEXT_SIZE
    max_gap_s: float = 30 * 60
    max_chars: int = 500
    anonymize: bool = True


def message_records(
    messages: Iterable[Message | None],
    options: SampleOptions,
    stats: Counter[str],
    first: Entry | None = None,
) -> Iterator[RecordBatch]:
    """Records of one chat's raw messages, in batches; counts what it drops in ``stats``.

    ``first``, a marker, opens the first batch when given. Batches, not one
    record at a time: every later stage loops over a batch in one go, which
    spares a generator step per message and stage.
    """
    anonymize = options.anonymize
    authors: dict[str, str] = {}  # one string object per author
    read = 0
    records: list[Entry] = [] if first is None else [first]
    texts: list[str] = [] if first is None else [""]
    mentioned: list[str] = []
    # The loop runs once per message: its methods are bound once.
    append, append_text, get_author = records.append, texts.append, authors.setdefault
    try:
        for message in messages:
            read += 1
            if message is None:  # not a JSON object
                stats["dropped_invalid"] += 1
                continue
            reason = _dropped(message)
            if reason is not None:
                stats[reason] += 1
                if reason == "dropped_forwarded":
                    # Someone else's post: not this author's words, and what
                    # follows usually discusses it, not the talk before.
                    append(BREAK)
                    append_text("")
                continue
            text = message.text
            try:
                time: float | None = float(message.date_unixtime)
            except (TypeError, ValueError):  # older exports have only "date"
                time = _timestamp(message.date)
            text = normalize(text if type(text) is str else join_text(text, anonymize, mentioned))
            if not text:  # anonymisation never empties a text, so this is final
                stats["dropped_empty"] += 1
                continue
            parent = message.reply_to_message_id
            if type(parent) is not int:
                parent = None
            author = message.from_id
            append((message.id, get_author(author, author), parent, time))
            append_text(text)
            if len(texts) >= BATCH:
                yield _cleaned(RecordBatch(records, texts, mentioned), anonymize)
                records, texts, mentioned = [], [], []
                append, append_text = records.append, texts.append
    finally:
        stats["messages_read"] += read
    if records:
        yield _cleaned(RecordBatch(records, texts, mentioned), anonymize)


def _cleaned(batch: RecordBatch, anonymize: bool) -> RecordBatch:
    if anonymize:
        anonymized_texts(batch.texts)
    return batch


def _dropped(message: Message) -> str | None:
    """Why a raw message gives no record (a ``stats`` key), or None for a message with text."""
    kind = message.type
    if kind != "message":
        return "dropped_service" if kind == "service" else "dropped_other_type"
    if message.forwarded_from is not UNSET:
        return "dropped_forwarded"
    author = message.from_id
    if type(author) is not str or not author.startswith(_AUTHOR_PREFIXES):
        return "dropped_no_author"
    if not message.text:
        return "dropped_media"
    if type(message.id) is not int:
        return "dropped_invalid"
    return None


def clean_records(
    batches: Iterable[RecordBatch], options: SampleOptions, paths: Sequence[Path]
) -> Iterator[RecordBatch]:
    """The batches with their final texts: participants' names replaced if asked (in place).

    The participants' names of all ``paths`` are looked up when the first
    batch has come, so that the scan overlaps a helper process's parsing.
    """
    names: Names | None = None
    for batch in batches:
        if options.anonymize:
            if names is None:
                names = Names(participant_names(paths))
            for name in batch.mentioned:
                names.add(name)
            names.replace_in(batch.texts)
        yield batch


def export_records(
    paths: Sequence[Path],
    options: SampleOptions,
    stats: Counter[str],
    on_bytes: Callable[[int], object] | None = None,
) -> Iterator[RecordBatch]:
    """The records of every chat of every file in batches, each chat opened by NEW_CHAT."""
    for path in paths:
        for chat in read_chats(path, on_bytes=on_bytes):
            stats["chats"] += 1
            if chat.kind.endswith("_channel"):
                skipped = sum(1 for _ in chat.messages)
                stats["messages_read"] += skipped
                stats["dropped_broadcast_channel"] += skipped
                continue
            yield from message_records(chat.messages, options, stats, NEW_CHAT)


def records_in_helper(
    paths: Sequence[Path],
    options: SampleOptions,
    stats: Counter[str],
    on_bytes: Callable[[int], object] | None = None,
) -> Iterator[RecordBatch]:
    """:func:`export_records`, computed in a helper process.

    Errors in the helper come back as the same ExportError; the helper is
    stopped when the caller stops early.
    """
    # fork starts at once; spawn (other platforms) imports this module anew.
    context = (
        multiprocessing.get_context("fork")
        if "fork" in multiprocessing.get_all_start_methods()
        else multiprocessing.get_context("spawn")
    )
    receiver, sender = context.Pipe(duplex=False)
    _widen(sender)
    helper = context.Process(
        target=_produce, args=([str(p) for p in paths], options, sender), name="prepare-records", daemon=True
    )
    helper.start()
    sender.close()
    try:
        while True:
            try:
                kind, payload, read = receiver.recv()
            except EOFError:
                raise RuntimeError(f"the export reader process died (exit code {helper.exitcode})") from None
            if on_bytes is not None and read:
                on_bytes(read)
            if kind == "records":
                records, joined, mentioned = payload
                yield RecordBatch(records, joined.split("\n"), mentioned)
            elif kind == "done":
                stats.update(payload)
                return
            else:
                raise ExportError(Path(payload[0]), payload[1])
    finally:
        receiver.close()
        if helper.is_alive():
            helper.terminate()
        helper.join()


def _widen(pipe: Connection) -> None:
    """Let the helper run several batches ahead of the caller (Linux; 64 KiB pipes hold half a batch)."""
    with suppress(ImportError, AttributeError, OSError):  # not Linux, or over the system's limit
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _produce(paths: list[str], options: SampleOptions, sender: Connection) -> None:
    """The helper process: record batches, then the counts (or the error)."""
    # Ctrl-C reaches the whole process group; the caller stops this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stats: Counter[str] = Counter()
    read = 0

    def count(n: int) -> None:
        nonlocal read
        read += n

    try:
        for records, texts, mentioned in export_records([Path(p) for p in paths], options, stats, count):
            # Normalised texts have no "\n": one string pickles several times
            # faster than thousands of small ones.
            sender.send(("records", (records, "\n".join(texts), mentioned), read))
            read = 0
        sender.send(("done", dict(stats), read))
    except ExportError as e:
        sender.send(("error", (str(e.path), e.problem), 0))
    finally:
        sender.close()


def _timestamp(date: Any) -> float | None:
    if isinstance(date, str):
        try:
            return datetime.fromisoformat(date).timestamp()
        except ValueError:
            return None
    return None
