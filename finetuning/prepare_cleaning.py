"""Message text for training: list-form text joined, contacts anonymised, junk recognised.

Telegram writes formatted text as a list of plain strings and entity objects
(``{"type": "link", "text": ...}``); it becomes one plain string here. With
anonymisation on, @mentions, e-mail addresses, phone numbers, URLs and the
names behind ``mention_name`` entities become placeholders, so a model trained
on public chats never learns people's contacts.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate
from typing import Any

from dialogue.format import normalize

MENTION = "[MENTION]"
NAME = "[NAME]"
EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
URL = "[URL]"

_TLD = r"(?:ru|com|org|net|io|me|su|info|dev|app|ly|gg|tv|co|рф)"
# A URL runs to the next space, less the punctuation that ends a sentence.
_URL_TAIL = r"\S*[^\s.,;:!?)\]}»\"'…]"
_URL = (
    rf"(?:https?://|ftp://|www\.){_URL_TAIL}"
    rf"|\b(?:[a-z0-9-]+\.)+{_TLD}\b(?:/{_URL_TAIL})?"
    rf"|\bt\.me/{_URL_TAIL}"
)
_URL_RE = re.compile(_URL, re.IGNORECASE)
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Telegram usernames: 5-32 characters, Latin letters, digits and "_";
# shorter ones are still replaced since people type partial handles.
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{2,31}\b")
_PHONE_RE = re.compile(r"(?<![\w+])\+?\d[\d\s().-]{7,}\d(?!\w)")
# Cheap scans that rule the patterns out: most chat messages have no "@",
# no run of digits and no dotted domain.
_DIGIT_RUN = re.compile(r"\d\D?\d\D?\d")
_DOT_TLD = re.compile(rf"\.{_TLD}\b", re.IGNORECASE)
# What clean_texts scans a joined batch for: every text that anonymize()
# changes contains one of these. The first four are its own pre-checks; the
# last is the core of _PHONE_RE (rarer than _DIGIT_RUN, so fewer texts to
# check), which any phone number that anonymize replaces must contain, even
# after the other replacements (placeholders have none of its characters).
# None of them matches "\n".
_HINTS = (
    re.compile("@"),
    re.compile("://"),
    re.compile(r"www\."),
    _DOT_TLD,
    re.compile(r"\d[\d ().-]{7,}\d"),
)

# Pictographs, dingbats, flags, skin tones, joiners and variation selectors.
_EMOJI = (
    "\U0001f000-\U0001faff\u2190-\u21ff\u2300-\u23ff\u2460-\u27bf\u2900-\u2bff"
    "\u3030\u303d\u3297\u3299\ufe0e\ufe0f\u200d\u20e3\U000e0020-\U000e007f"
)
_JUNK_RE = re.compile(
    rf"(?P<only_link>(?:(?:{_URL}|{re.escape(URL)})[\s,;]*)+)|(?P<only_emoji>[{_EMOJI}\s]+)",
    re.IGNORECASE,
)


def join_text(text: Any, anonymize: bool) -> str:
    """The plain text of a message's ``text`` field ("" when there is none)."""
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
                value = NAME
            parts.append(value)
    return "".join(parts)


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match[0])
    return PHONE if 10 <= digits <= 15 else match[0]


def anonymize(text: str) -> str:
    """Replace e-mails, @mentions, URLs and phone numbers with placeholders."""
    if "@" in text:
        text = _EMAIL_RE.sub(EMAIL, text)
        text = _MENTION_RE.sub(MENTION, text)
    if "://" in text or "www." in text or _DOT_TLD.search(text):
        text = _URL_RE.sub(URL, text)
    if _DIGIT_RUN.search(text):
        text = _PHONE_RE.sub(_phone, text)
    return text


def clean_text(text: Any, anonymize_contacts: bool = True) -> str:
    """Joined, normalised (the shared rule) and, if asked, anonymised text."""
    if type(text) is not str:
        text = join_text(text, anonymize_contacts)
    text = normalize(text)
    return anonymize(text) if anonymize_contacts and text else text


def clean_texts(texts: list[str], anonymize_contacts: bool = True) -> list[str]:
    """``[clean_text(t, anonymize_contacts) for t in texts]`` for plain strings, faster."""
    cleaned = list(map(normalize, texts))
    if anonymize_contacts:
        anonymized_texts(cleaned)
    return cleaned


def anonymized_texts(texts: list[str]) -> set[int]:
    """Anonymise normalised ``texts`` in place; the indexes of those that changed.

    Most messages need no anonymisation, but finding that out text by text
    (four scans each) cost more than the rest of cleaning. Here the scans run
    once over the whole batch joined by "\\n" (which normalised texts do not
    contain, and which none of the scans can match), and only the texts they
    hit go through :func:`anonymize`, which decides exactly.
    """
    joined = "\n".join(texts)
    positions = [match.start() for pattern in _HINTS for match in pattern.finditer(joined)]
    changed: set[int] = set()
    if positions:
        starts = list(accumulate([len(t) + 1 for t in texts[:-1]], initial=0))
        for i in {bisect_right(starts, position) - 1 for position in positions}:
            text = anonymize(texts[i])
            if text != texts[i]:
                texts[i] = text
                changed.add(i)
    return changed


def junk_kind(text: str) -> str | None:
    """ "only_link" or "only_emoji" for a text that is nothing else, otherwise None."""
    match = junk_match(text)
    return None if match is None else match.lastgroup


# The same test without a Python call around it, for the per-row loop:
# a match (its ``lastgroup`` names the kind) or None.
junk_match = _JUNK_RE.fullmatch
