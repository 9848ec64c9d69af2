"""Participants' names in plain text become ``[NAME]``, with the common Russian case endings.

The names are those of the export's own people: every ``from`` of a user
message, found by :func:`participant_names` in a quick scan of the raw files
before parsing (so a name is known before its owner's first message), and
every user named by a ``mention_name`` entity, added when the parser meets it
(:meth:`Names.add`). Each word of a name of three or more letters counts on
its own, so a first name, a last name and the full name are all replaced; a
full name becomes one ``[NAME]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

NAME = "[NAME]"

# The ``from`` of a user's message, as Telegram Desktop writes it: the name
# (a JSON string) and then ``"from_id": "user..."``. Groups and channels that
# write in a group are left out: their titles are ordinary words.
_FROM_USER = re.compile(rb'"from": *("[^"\\\n]*(?:\\.[^"\\\n]*)*"),\s*"from_id": *"user')
_SCAN_BYTES = 1 << 22
_NAME_WORD = re.compile(r"[^\W\d_]{3,}")
_WORD = re.compile(r"\w{3,}")
_NAMES_IN_A_ROW = re.compile(r"\[NAME\](?: \[NAME\])+")
# What follows a name's stem in its cases (Анна -> Анны, Анне, Анну, Анной;
# Борис -> Бориса, Борисом; Смирнова -> Смирновой; Дмитрий -> Дмитрия).
_ENDINGS = (
    "а я у ю е ы и й ь ой ей ою ею ёй ом ем ём ым им ами ями ого его ому ему ая яя ую юю ых их"
).split()
_CYRILLIC = re.compile("[а-яё]")


def participant_names(paths: Sequence[Path]) -> set[str]:
    """The ``from`` names of the users who write in these exports."""
    names: set[str] = set()
    for path in paths:
        raw: set[bytes] = set()
        with path.open("rb") as f:
            tail = b""
            while chunk := f.read(_SCAN_BYTES):
                # A match cut by the chunk's end is found again in the next one.
                data = tail + chunk
                raw.update(_FROM_USER.findall(data))
                tail = data[-256:]
        for literal in raw:
            try:
                name = json.loads(literal)
            except ValueError:  # a broken file: the parser will say where
                continue
            if isinstance(name, str):
                names.add(name)
    return names


def name_forms(name: str) -> set[str]:
    """The lower-case words of ``name`` in the forms a text may use."""
    forms: set[str] = set()
    for word in _NAME_WORD.findall(name.lower()):
        forms.add(word)
        if not _CYRILLIC.search(word):
            continue
        stems = {word[:-1] if word[-1] in "аяоеьйыи" else word}
        if word.endswith(("ий", "ый", "ой")):  # Достоевский -> Достоевского
            stems.add(word[:-2])
        forms.update(stem + ending for stem in stems if len(stem) >= 2 for ending in _ENDINGS)
    return forms


class Names:
    """The name forms to replace; :meth:`replace_in` anonymises a batch of texts."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.forms: set[str] = set()
        self._known: set[str] = set()
        for name in names:
            self.add(name)

    def add(self, name: str) -> None:
        if name not in self._known:
            self._known.add(name)
            self.forms |= name_forms(name)

    def replace_in(self, texts: list[str]) -> None:
        """Replace the names in ``texts`` (normalised, so without "\\n") in place.

        The batch is searched word by word for a known form, which costs the
        same whatever the number of names, and each distinct space-separated
        token once (chat talk repeats its words: half the time of a search
        of the whole batch). Only a batch with a name is rewritten, by a
        pattern of the forms it holds.
        """
        if not self.forms:
            return
        joined = "\n".join(texts)
        forms, words_of = self.forms, _WORD.findall
        found: set[str] = set()
        for token in set(joined.split()):
            if len(token) >= 3:
                found.update(word for word in words_of(token) if word.lower() in forms)
        if not found:
            return
        pattern = "|".join(sorted(map(re.escape, found), key=len, reverse=True))
        replaced = re.sub(rf"\b(?:{pattern})\b", NAME, joined, flags=re.IGNORECASE)
        texts[:] = _NAMES_IN_A_ROW.sub(NAME, replaced).split("\n")
