"""First stage of data preparation: export files -> compact message records.

Every message of every chat is either dropped here (counted by reason) or
becomes a record ``(id, author, text, reply_to, unix_time)``: first with its
text joined to one string and normalised (:func:`export_records`), then
anonymised (:func:`clean_records`). A chat starts with
:data:`NEW_CHAT`; a forwarded post or a message over the length limit, either
of which ends the conversation around it, is :data:`BREAK`.

Records travel in batches (lists), so that every stage loops over a list
rather than pulling each record through a chain of generators.
:func:`records_in_helper` can run this whole stage (parsing is most of it) in
a second process that sends the batches to the caller while the caller builds
and writes rows: that split halves the work between the two processes.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from dialogue.format import CONTEXT_SIZE, normalize
from finetuning.export_reader import ExportError, read_chats
from finetuning.prepare_cleaning import anonymized_texts, join_text

Record = tuple[int, str, str, "int | None", "float | None"]
NEW_CHAT: tuple[()] = ()
BREAK = None
Batch = list["Record | None | tuple[()]"]
# Records per batch: large enough that per-batch costs (joining texts for
# the scans, pickling to the caller) vanish, small enough to stay a few MB.
BATCH = 8192


@dataclass(frozen=True)
class SampleOptions:
    context_size: int = CONTEXT_SIZE
    max_gap_s: float = 30 * 60
    max_chars: int = 500
    anonymize: bool = True


def message_records(messages: Iterable[Any], options: SampleOptions, stats: Counter[str],
                    batch: Batch | None = None) -> Iterator[Batch]:
    """Records of one chat's raw messages, in batches; counts what it drops in ``stats``.

    The first batch goes on from ``batch`` when one is given. Lists, not one
    record at a time: every later stage loops over a batch in one go, which
    spares a generator step per message and stage.
    """
    anonymize = options.anonymize
    authors: dict[str, str] = {}  # one string object per author
    read = 0
    if batch is None:
        batch = []
    append = batch.append
    try:
        for message in messages:
            read += 1
            if type(message) is not dict:
                stats["dropped_invalid"] += 1
                continue
            kind = message.get("type")
            if kind != "message":
                stats["dropped_service" if kind == "service" else "dropped_other_type"] += 1
                continue
            if "forwarded_from" in message:
                # Someone else's post: not this author's words, and what follows
                # usually discusses it, not the talk before.
                stats["dropped_forwarded"] += 1
                append(BREAK)
                continue
            author = message.get("from_id")
            if type(author) is not str or not author.startswith("user"):
                stats["dropped_not_user"] += 1
                continue
            text = message.get("text")
            if not text:
                stats["dropped_media"] += 1
                continue
            message_id = message.get("id")
            if type(message_id) is not int:
                stats["dropped_invalid"] += 1
                continue
            try:
                time: float | None = float(message["date_unixtime"])
            except (KeyError, TypeError, ValueError):  # older exports have only "date"
                time = _timestamp(message)
            text = normalize(text if type(text) is str else join_text(text, anonymize))
            if not text:  # anonymisation never empties a text, so this is final
                stats["dropped_empty"] += 1
                continue
            parent = message.get("reply_to_message_id")
            append((
                message_id,
                authors.setdefault(author, author),
                text,
                parent if type(parent) is int else None,
                time,
            ))
            if len(batch) >= BATCH:
                yield batch
                batch = []
                append = batch.append
    finally:
        stats["messages_read"] += read
    if batch:
        yield batch


def clean_records(batches: Iterable[Batch], options: SampleOptions, stats: Counter[str]) -> Iterator[Batch]:
    """The batches with each record's final text: anonymised; overlong ones dropped.

    Batches are changed in place: only the few records whose text changes
    are rebuilt.
    """
    anonymize, max_chars = options.anonymize, options.max_chars
    for batch in batches:
        if anonymize:
            texts = [record[2] if record else "" for record in batch]
            for i in anonymized_texts(texts):
                record = batch[i]
                assert record  # markers have no text, so no hits
                batch[i] = (record[0], record[1], texts[i], record[3], record[4])
        if max(map(_text_length, batch), default=0) > max_chars:
            batch = _without_overlong(batch, max_chars, stats)
        yield batch


def _text_length(record: Record | None | tuple[()]) -> int:
    return len(record[2]) if record else 0


def _without_overlong(batch: Batch, max_chars: int, stats: Counter[str]) -> Batch:
    kept: Batch = []
    for record in batch:
        if record and len(record[2]) > max_chars:
            # Dropped, and the talk around it is not glued together over it.
            stats["dropped_too_long"] += 1
            record = BREAK
        kept.append(record)
    return kept


def export_records(paths: Sequence[Path], options: SampleOptions, stats: Counter[str],
                   on_bytes: Callable[[int], object] | None = None) -> Iterator[Batch]:
    """The records of every chat of every file in batches, each chat opened by NEW_CHAT."""
    for path in paths:
        for chat in read_chats(path, on_bytes=on_bytes):
            stats["chats"] += 1
            yield from message_records(chat.messages, options, stats, [NEW_CHAT])


def records_in_helper(paths: Sequence[Path], options: SampleOptions, stats: Counter[str],
                      on_bytes: Callable[[int], object] | None = None) -> Iterator[Batch]:
    """:func:`export_records`, computed in a helper process.

    Errors in the helper come back as the same ExportError; the helper is
    stopped when the caller stops early.
    """
    # fork starts at once; spawn (other platforms) imports this module anew.
    context = (multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods()
               else multiprocessing.get_context("spawn"))
    receiver, sender = context.Pipe(duplex=False)
    helper = context.Process(target=_produce, args=([str(p) for p in paths], options, sender),
                             name="prepare-records", daemon=True)
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
                yield payload
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
        for batch in export_records([Path(p) for p in paths], options, stats, count):
            sender.send(("records", batch, read))
            read = 0
        sender.send(("done", dict(stats), read))
    except ExportError as e:
        sender.send(("error", (str(e.path), e.problem), 0))
    finally:
        sender.close()


def _timestamp(message: dict[str, Any]) -> float | None:
    date = message.get("date")
    if isinstance(date, str):
        try:
            return datetime.fromisoformat(date).timestamp()
        except ValueError:
            return None
    return None
