"""Second stage of data preparation: message records -> training rows, reply-aware.

A message that replies to an earlier message of the chat gets its reply chain
(parent, grandparent, ...) as context; every reply makes its own row, so all
branches of a thread are kept. Other messages get the turns before them in the
same conversation, and a pause longer than ``max_gap_s`` starts a new one.
Consecutive messages of one author form one turn (the shared format's merge
rule), so every row alternates speakers.

Only one chat's state is held at a time: an id -> (author, text, parent) map
of its kept messages, needed because a reply may point anywhere back.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator

from dialogue.format import merge_consecutive
from finetuning.prepare_cleaning import junk_match
from finetuning.prepare_records import NEW_CHAT, RecordBatch, SampleOptions

Row = tuple[str, ...]
# A reply chain is followed up to context_size changes of author; this caps
# it when one author keeps replying to themselves.
MAX_CHAIN_STEPS = 64


def sample_rows(
    batches: Iterable[RecordBatch], options: SampleOptions, stats: Counter[str]
) -> Iterator[list[Row]]:
    """Rows (context_N, ..., context_1, response) from the record batches of prepare_records.

    One list of rows per batch, and one more with the row of the turn still
    open at the end. Counts what it drops in ``stats``. The loop runs once
    per message of every export, so it keeps its state in local variables:
    the open turn is its author, texts and (if it starts with a reply to a
    known message) parent id.
    """
    n = options.context_size
    max_gap_s = options.max_gap_s
    known: dict[int, tuple[str, str, int | None]] = {}
    # The closed turns of this conversation, oldest first; authors alternate.
    window_authors: deque[str] = deque(maxlen=n)
    window_texts: deque[str] = deque(maxlen=n)
    turn_author: str | None = None
    turn_texts: list[str] = []
    turn_parent: int | None = None
    last_time = 0.0

    def close_turn() -> Row | None:
        """The open turn's row (None when its response is junk); the turn joins the window."""
        assert turn_author is not None
        text = turn_texts[0] if len(turn_texts) == 1 else _joined(turn_author, turn_texts)
        same_author = bool(window_authors) and window_authors[-1] == turn_author
        if turn_parent is None and not same_author:
            # The common case, kept cheap: the window is the context as it is.
            k = len(window_texts)
            row = (*window_texts, text) if k == n else ("",) * (n - k) + (*window_texts, text)
        else:
            if turn_parent is not None:
                sequence = _with_chain(known, turn_parent, (turn_author, text), n)
            else:
                sequence = merge_consecutive(
                    [*zip(window_authors, window_texts, strict=True), (turn_author, text)]
                )
            row = ("",) * (n + 1 - len(sequence)) + tuple([t for _, t in sequence[-n - 1 :]])
        # The closed turn is context for the next ones, merged into the last
        # turn when the same author goes on after a reply of theirs.
        if same_author:
            window_texts[-1] = merge_consecutive([(turn_author, window_texts[-1]), (turn_author, text)])[0][1]
        else:
            window_authors.append(turn_author)
            window_texts.append(text)
        junk = junk_match(row[-1])
        if junk is not None:
            stats[f"dropped_{junk.lastgroup}"] += 1
            return None
        return row

    for records, texts in batches:
        rows: list[Row] = []
        for record, text in zip(records, texts, strict=True):
            if not record:
                # A new chat (NEW_CHAT), a forwarded post or an overlong message
                # (BREAK) ends the conversation.
                if turn_author is not None and (row := close_turn()) is not None:
                    rows.append(row)
                turn_author = None
                window_authors.clear()
                window_texts.clear()
                if record is NEW_CHAT:
                    known = {}  # ids are per chat; the old chat's map is released
                continue
            message_id, author, parent, time = record
            if message_id in known:
                # A broken export: a second message with the same id would make
                # the reply map ambiguous (and could make it cyclic).
                stats["dropped_repeated_id"] += 1
                continue
            if parent is not None:
                if parent in known:
                    stats["replies_in_chain"] += 1
                else:
                    stats["replies_to_unknown"] += 1
                    parent = None
            known[message_id] = (author, text, parent)

            new_conversation = time is not None and abs(time - last_time) > max_gap_s
            if turn_author is not None and (new_conversation or parent is not None or turn_author != author):
                if (row := close_turn()) is not None:
                    rows.append(row)
                turn_author = None
            if new_conversation:
                window_authors.clear()
                window_texts.clear()
            if turn_author is None:
                turn_author, turn_texts, turn_parent = author, [text], parent
            else:
                turn_texts.append(text)
            if time is not None:
                last_time = time
        yield rows

    if turn_author is not None and (row := close_turn()) is not None:
        yield [row]


def _joined(author: str, texts: list[str]) -> str:
    """One turn's messages as one text, by the shared merge rule."""
    return merge_consecutive([(author, text) for text in texts])[0][1]


def _with_chain(
    known: dict[int, tuple[str, str, int | None]], parent: int | None, response: tuple[str, str], n: int
) -> list[tuple[str, str]]:
    """The reply chain ending in the ``response`` turn, merged, with at most n turns before it."""
    chain = [response]
    last_author, turns = response[0], 0
    for _ in range(MAX_CHAIN_STEPS):
        entry = known.get(parent) if parent is not None else None
        if entry is None:
            break
        if entry[0] != last_author:
            turns += 1
            if turns > n:
                break
            last_author = entry[0]
        chain.append((entry[0], entry[1]))
        parent = entry[2]
    chain.reverse()
    return _merged(chain)


def _merged(turns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``merge_consecutive(turns)`` for normalised texts, skipped when the authors already alternate."""
    for before, after in zip(turns, turns[1:], strict=False):
        if before[0] == after[0]:
            return merge_consecutive(turns)
    return turns
