"""Second stage of data preparation: message records -> training rows, reply-aware.

A message that replies to an earlier message of the chat gets its reply chain
(parent, grandparent, ...) as context; every reply makes its own row, so all
branches of a thread are kept. Other messages get the turns before them in the
same conversation, and a pause longer than ``max_gap_s`` starts a new one.
Consecutive messages of one author form one turn (the shared format's merge
rule), so every row alternates speakers; a turn that starts with a reply keeps
that reply's chain as its context.

The length limit applies to whole turns: a response over it is dropped, a
context turn over it is cut to its last words, so a reply to a long message
keeps its parent.

Only one chat's state is held at a time: an id -> (author, text, parent) map
of its kept messages, needed because a reply may point anywhere back.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator

from dialogue.format import merge_consecutive
from finetuning.prepare.cleaning import junk_match
from finetuning.prepare.records import NEW_CHAT, Entry, RecordBatch, SampleOptions

Row = tuple[str, ...]
# A reply chain is followed up to context_size changes of author; this caps
# it when one author keeps replying to themselves.
MAX_CHAIN_STEPS = 64


def sample_rows(
    batches: Iterable[RecordBatch], options: SampleOptions, stats: Counter[str]
) -> Iterator[list[Row]]:
    """Rows (context_N, ..., context_1, response) from the record batches of prepare.records.

    One list of rows per batch, and one more with the row of the turn still
    open at the end. Counts what it drops in ``stats``.
    """
    conversation = _Conversation(options, stats)
    for records, texts, _ in batches:
        yield conversation.rows(records, texts)
    yield conversation.end()


def cut_to_end(text: str, max_chars: int) -> str:
    """The last words of ``text`` that fit in ``max_chars`` (a cut word is left out)."""
    if len(text) <= max_chars:
        return text
    end = text[-max_chars:]
    if text[-max_chars - 1] != " " and " " in end:
        end = end[end.index(" ") + 1 :]
    return end


class _Conversation:
    """The talk going on in one chat: the open turn and the closed turns before it.

    The state is plain attributes.
    """

    def __init__(self, options: SampleOptions, stats: Counter[str]) -> None:
        self.n = options.context_size
        self.max_gap_s = options.max_gap_s
        self.max_chars = options.max_chars
        self.stats = stats
        self.known: dict[int, tuple[str, str, int | None]] = {}
        # The closed turns of this conversation, oldest first; authors alternate.
        self.window_authors: deque[str] = deque(maxlen=self.n)
        self.window_texts: deque[str] = deque(maxlen=self.n)
        # The open turn: its author, texts and (if it starts with a reply to a
        # known message) parent id.
        self.turn_author: str | None = None
        self.turn_texts: list[str] = []
        self.turn_parent: int | None = None
        self.last_time = 0.0
        self._rows: list[Row] = []

    def rows(self, records: list[Entry], texts: list[str]) -> list[Row]:
        """The rows of the turns that these records close.

        One pass per message, with the per-message steps written out here
        rather than in methods: measured on prepare_speed's export, that took
        the sampler from 0.79 to 0.72 s, of about 4 s for the whole run.
        """
        self._rows = []
        known, stats, max_gap_s = self.known, self.stats, self.max_gap_s
        for record, text in zip(records, texts, strict=True):
            if not record:
                # A new chat (NEW_CHAT) or a forwarded post (BREAK) ends the conversation.
                self._close_turn()
                self._forget_window()
                if record is NEW_CHAT:
                    known = self.known = {}  # ids are per chat; the old chat's map is released
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
            new_conversation = time is not None and abs(time - self.last_time) > max_gap_s
            if new_conversation or parent is not None or author != self.turn_author:
                self._close_turn()
                if new_conversation:
                    self._forget_window()
                self.turn_author, self.turn_texts, self.turn_parent = author, [text], parent
            else:
                self.turn_texts.append(text)
            if time is not None:
                self.last_time = time
        return self._rows

    def end(self) -> list[Row]:
        self._rows = []
        self._close_turn()
        return self._rows

    def _forget_window(self) -> None:
        self.window_authors.clear()
        self.window_texts.clear()

    def _close_turn(self) -> None:
        """The open turn's row, unless dropped; the turn joins the window."""
        author = self.turn_author
        if author is None:
            return
        self.turn_author = None
        texts = self.turn_texts
        text = texts[0] if len(texts) == 1 else merge_consecutive([(author, t) for t in texts])[0][1]
        row = self._row(author, text)
        self._extend_window(author, text)
        if row is not None:
            self._rows.append(row)

    def _row(self, author: str, text: str) -> Row | None:
        """The row of the closed turn, or None (counted) when its response is too long or junk."""
        n = self.n
        same_author = bool(self.window_authors) and self.window_authors[-1] == author
        if self.turn_parent is None and not same_author:
            # The common case, kept cheap: the window is the context as it is.
            context, response = list(self.window_texts), text
        else:
            if self.turn_parent is not None:
                turns = self._chain(self.turn_parent, (author, text))
            else:
                turns = merge_consecutive(
                    [*zip(self.window_authors, self.window_texts, strict=True), (author, text)]
                )
            *context, response = [t for _, t in turns[-n - 1 :]]
        if len(response) > self.max_chars:
            self.stats["dropped_too_long"] += 1
            return None
        junk = junk_match(response)
        if junk is not None:
            self.stats[f"dropped_{junk.lastgroup}"] += 1
            return None
        if context and max(map(len, context)) > self.max_chars:
            context = [cut_to_end(t, self.max_chars) for t in context]
        return ("",) * (n - len(context)) + (*context, response)

    def _extend_window(self, author: str, text: str) -> None:
        """The closed turn is context for the next ones, merged into the last
        turn when the same author goes on after a reply of theirs."""
        if self.window_authors and self.window_authors[-1] == author:
            self.window_texts[-1] = merge_consecutive([(author, self.window_texts[-1]), (author, text)])[0][1]
        else:
            self.window_authors.append(author)
            self.window_texts.append(text)

    def _chain(self, parent: int | None, response: tuple[str, str]) -> list[tuple[str, str]]:
        """The reply chain ending in the ``response`` turn, merged, with at most n turns before it."""
        chain = [response]
        last_author, turns = response[0], 0
        for _ in range(MAX_CHAIN_STEPS):
            entry = self.known.get(parent) if parent is not None else None
            if entry is None:
                break
            if entry[0] != last_author:
                turns += 1
                if turns > self.n:
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
