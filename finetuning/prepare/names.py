"""Who takes part in an export: the names that :class:`dialogue.anonymize.Names` replaces.

The names are those of the export's own people: every ``from`` of a user
message, found by :func:`participant_names` in a quick scan of the raw files
before parsing (so a name is known before its owner's first message), and
every user named by a ``mention_name`` entity, added when the parser meets it
(:meth:`Names.add`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

# The ``from`` of a user's message, as Telegram Desktop writes it: the name
# (a JSON string) and then ``"from_id": "user..."``. Groups and channels that
# write in a group are left out: their titles are ordinary words.
_FROM_USER = re.compile(rb'"from": *("[^"\\\n]*(?:\\.[^"\\\n]*)*"),\s*"from_id": *"user')
_SCAN_BYTES = 1 << 22


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
