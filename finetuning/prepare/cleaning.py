"""Message text for training: list-form text joined, junk recognised.

Telegram writes formatted text as a list of plain strings and entity objects
(``{"type": "link", "text": ...}``); it becomes one plain string here, and the
names behind ``mention_name`` entities become ``[NAME]`` when anonymising. The
anonymisation itself (contacts and participants' names) is
:mod:`dialogue.anonymize`, shared with the bot's learning corpus.
"""

from __future__ import annotations

import re
from typing import Any

from dialogue.anonymize import NAME, PLACEHOLDERS, SCHEME_URL, URL

# Pictographs, dingbats, flags, skin tones, joiners and variation selectors.
_EMOJI = (
    "\U0001f000-\U0001faff\u2190-\u21ff\u2300-\u23ff\u2460-\u27bf\u2900-\u2bff"
    "\u3030\u303d\u3297\u3299\ufe0e\ufe0f\u200d\u20e3\U000e0020-\U000e007f"
)
_PLACEHOLDER = "|".join(re.escape(p) for p in PLACEHOLDERS)
# A response that is only one of these teaches nothing; the group that
# matches (``lastgroup``) names the kind.
_JUNK_RE = re.compile(
    rf"(?P<only_link>(?:(?:{SCHEME_URL}|{re.escape(URL)})[\s,;]*)+)"
    rf"|(?P<only_emoji>[{_EMOJI}\s]+)"
    r"|(?P<only_punctuation>[\W_]+)"
    r"|(?P<only_number>[\d\W_]+)"
    rf"|(?P<only_placeholder>(?:{_PLACEHOLDER}|[\d\W_])+)",
    re.IGNORECASE,
)


def join_text(text: Any, anonymize: bool, mentioned: list[str] | None = None) -> str:
    """The plain text of a message's ``text`` field ("" when there is none).

    With ``anonymize``, the names of ``mention_name`` entities become [NAME]
    and are appended to ``mentioned``.
    """
    if type(text) is str:
        return text
    if not isinstance(text, list):
        return ""
    parts: list[str] = []
    for part in text:
        if type(part) is str:
            parts.append(part)
        elif isinstance(part, dict):
            value = part.get("text")
            if not isinstance(value, str):
                continue
            # A mention_name is a person without a username: only the entity
            # type tells that this text is a name.
            if anonymize and part.get("type") == "mention_name":
                if mentioned is not None:
                    mentioned.append(value)
                value = NAME
            parts.append(value)
    return "".join(parts)


# A match (its ``lastgroup`` names the kind) or None, for the per-row loop.
junk_match = _JUNK_RE.fullmatch
