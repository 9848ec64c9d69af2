"""Message text for training: list-form text joined, contacts anonymised, junk recognised.

Telegram writes formatted text as a list of plain strings and entity objects
(``{"type": "link", "text": ...}``); it becomes one plain string here. With
anonymisation on, @mentions, e-mail addresses, URLs and bare domains (any
public suffix, from tldextract's bundled list), card numbers (Luhn-valid, 13
to 19 digits), IPv4 and IPv6 addresses and phone numbers become placeholders,
and so do the names behind ``mention_name`` entities; participants' names in
plain text are names.py's part.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from functools import cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from finetuning.prepare.names import NAME

if TYPE_CHECKING:
    import tldextract

MENTION = "[MENTION]"
EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
URL = "[URL]"
CARD = "[CARD]"
IP = "[IP]"
PLACEHOLDERS = (NAME, MENTION, EMAIL, PHONE, URL, CARD, IP)

# A URL runs to the next space, less the punctuation that ends a sentence.
_URL_TAIL = r"\S*[^\s.,;:!?)\]}»\"'…]"
_SCHEME_URL = rf"(?:https?://|ftp://|www\.){_URL_TAIL}"
_SCHEME_URL_RE = re.compile(_SCHEME_URL, re.IGNORECASE)
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

# Pictographs, dingbats, flags, skin tones, joiners and variation selectors.
_EMOJI = (
    "\U0001f000-\U0001faff\u2190-\u21ff\u2300-\u23ff\u2460-\u27bf\u2900-\u2bff"
    "\u3030\u303d\u3297\u3299\ufe0e\ufe0f\u200d\u20e3\U000e0020-\U000e007f"
)
_PLACEHOLDER = "|".join(re.escape(p) for p in PLACEHOLDERS)
# A response that is only one of these teaches nothing; the group that
# matches (``lastgroup``) names the kind.
_JUNK_RE = re.compile(
    rf"(?P<only_link>(?:(?:{_SCHEME_URL}|{re.escape(URL)})[\s,;]*)+)"
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


# A match (its ``lastgroup`` names the kind) or None, for the per-row loop.
junk_match = _JUNK_RE.fullmatch
