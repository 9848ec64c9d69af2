"""Anonymisation of chat text, shared by the export's preparation and the bot's learning corpus.

Contacts: @mentions, e-mail addresses, URLs and bare domains (any public
suffix, from tldextract's bundled list), card numbers (Luhn-valid, 13 to 19
digits), IPv4 and IPv6 addresses and phone numbers become placeholders
(:func:`anonymize`, :func:`anonymized_texts` for a batch). Names: the names of
a chat's participants in plain text become ``[NAME]``, with the common Russian
case endings (:class:`Names`). Each word of a name of three or more letters
counts on its own, so a first name, a last name and the full name are all
replaced; a full name becomes one ``[NAME]``. Who the participants are is the
caller's part: an export's ``from`` names (finetuning/prepare/names.py), or the
names the bot has seen in a group (bot/core/learning.py).

It imports nothing of the project, and needs only tldextract beyond the
standard library, so both the training image and the bot image carry it.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections.abc import Iterable
from functools import cache
from itertools import accumulate
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tldextract

NAME = "[NAME]"
MENTION = "[MENTION]"
EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
URL = "[URL]"
CARD = "[CARD]"
IP = "[IP]"
PLACEHOLDERS = (NAME, MENTION, EMAIL, PHONE, URL, CARD, IP)

# A URL runs to the next space, less the punctuation that ends a sentence.
_URL_TAIL = r"\S*[^\s.,;:!?)\]}»\"'…]"
# Public: the junk patterns of finetuning/prepare/cleaning.py use it too.
SCHEME_URL = rf"(?:https?://|ftp://|www\.){_URL_TAIL}"
_SCHEME_URL_RE = re.compile(SCHEME_URL, re.IGNORECASE)
# Dotted words, perhaps with a port and a path: a domain when the public
# suffix list knows its ending (site.de/page, кафе.рф, but not т.е. or 19.30).
_DOMAIN_RE = re.compile(rf"(?<![\w@.-])((?:[^\W_][\w-]*\.)+[^\W\d_][\w-]*)\b(?::\d+)?(?:/{_URL_TAIL})?")
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Telegram usernames: 5-32 characters, Latin letters, digits and "_";
# shorter ones are still replaced since people type partial handles.
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{2,31}\b")
_CARD_RE = re.compile(r"(?<![\d+])\d(?:[ -]?\d){12,18}(?!\d)")
_IPV4_RE = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?!\d|\.\d)")
_IPV6_RE = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_PHONE_RE = re.compile(r"(?<![\w+])\+?\d[\d\s().-]{7,}\d(?!\w)")
# Cheap scans that rule the patterns out: most chat messages have no "@",
# no run of digits and no dot before letters.
_DIGIT_RUN = re.compile(r"\d\D?\d\D?\d")
_DOT_WORD = re.compile(r"\.[^\W\d_]{2}")
_HEX_COLONS = re.compile(r":[0-9A-Fa-f]*:")
# What anonymized_texts scans a joined batch for: every text that
# anonymize() changes contains one of these. The first five are its own
# pre-checks; the last is the core of _PHONE_RE and _CARD_RE (rarer than
# _DIGIT_RUN, so fewer texts to check) or of _IPV4_RE, which any number they
# replace must contain, even after the other replacements (placeholders have
# none of their characters). None of them matches "\n". Each starts with a
# literal or a digit, which the regex engine skips to quickly.
_HINTS = (
    re.compile("@"),
    re.compile("://"),
    re.compile(r"www\."),
    _DOT_WORD,
    _HEX_COLONS,
    re.compile(r"\d(?:[\d ().-]{7,}\d|\.\d{1,3}\.\d)"),
)


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match[0])
    return PHONE if 10 <= digits <= 15 else match[0]


def _card(match: re.Match[str]) -> str:
    digits = [int(c) for c in match[0] if c.isdigit()]
    # Luhn: every second digit from the right doubled, digits summed.
    total = sum(digits[-1::-2]) + sum(d * 2 - 9 if d > 4 else d * 2 for d in digits[-2::-2])
    return CARD if total % 10 == 0 else match[0]


def _ip(match: re.Match[str]) -> str:
    text = match[0]
    if ":" in text and not any(map(str.isdigit, text)):
        return text  # "::", "a::b" or "cafe:be:ad" in ordinary text
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return text
    return IP


@cache
def _public_suffixes() -> tldextract.TLDExtract:
    """The public suffix list as tldextract ships it.

    An empty URL list means it never fetches a newer one (data preparation
    runs offline) and keeps no cache. Imported on first use: its imports
    (requests) take 70 ms, which the process that parses pays, not the one
    that starts first and waits.
    """
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _domain(match: re.Match[str]) -> str:
    parts = _public_suffixes().extract_str(match[1])
    return URL if parts.suffix and parts.domain else match[0]


def anonymize(text: str) -> str:
    """Replace e-mails, @mentions, URLs, domains, IPs, card and phone numbers with placeholders."""
    if "@" in text:
        text = _EMAIL_RE.sub(EMAIL, text)
        text = _MENTION_RE.sub(MENTION, text)
    if "://" in text or "www." in text:
        text = _SCHEME_URL_RE.sub(URL, text)
    if ":" in text and _HEX_COLONS.search(text):  # every IPv6 address has "::" or ":hex:"
        text = _IPV6_RE.sub(_ip, text)
    if _DIGIT_RUN.search(text):
        text = _IPV4_RE.sub(_ip, text)
        text = _CARD_RE.sub(_card, text)
        text = _PHONE_RE.sub(_phone, text)
    if _DOT_WORD.search(text):
        text = _DOMAIN_RE.sub(_domain, text)
    return text


def anonymized_texts(texts: list[str]) -> None:
    """Anonymise normalised ``texts`` in place (contacts; names are names.py's).

    Most messages need no anonymisation, but finding that out text by text
    (several scans each) cost more than the rest of cleaning. Here the scans
    run once over the whole batch joined by "\\n" (which normalised texts do
    not contain, and which none of the scans can match), and only the texts
    they hit go through :func:`anonymize`, which decides exactly.
    """
    joined = "\n".join(texts)
    positions = [match.start() for pattern in _HINTS for match in pattern.finditer(joined)]
    if positions:
        starts = list(accumulate([len(t) + 1 for t in texts[:-1]], initial=0))
        for i in {bisect_right(starts, position) - 1 for position in positions}:
            texts[i] = anonymize(texts[i])


_NAME_WORD = re.compile(r"[^\W\d_]{3,}")
_WORD = re.compile(r"\w{3,}")
_NAMES_IN_A_ROW = re.compile(r"\[NAME\](?: \[NAME\])+")
# What follows a name's stem in its cases (Анна -> Анны, Анне, Анну, Анной;
# Борис -> Бориса, Борисом; Смирнова -> Смирновой; Дмитрий -> Дмитрия).
_ENDINGS = (
    "а я у ю е ы и й ь ой ей ою ею ёй ом ем ём ым им ами ями ого его ому ему ая яя ую юю ых их"
).split()
_CYRILLIC = re.compile("[а-яё]")


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
