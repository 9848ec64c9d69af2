"""Text cleaning, anonymisation and CSV formatting, checked piece by piece."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialogue.format import normalize
from finetuning.prepare_cleaning import anonymize, anonymized_texts, clean_text, clean_texts, junk_kind
from finetuning.prepare_csv import csv_header, write_rows

# Russian and Latin letters, digits, punctuation, "@" runs, quotes and every kind of whitespace.
ALPHABET = "абвгАБВ xyzXYZ0129 .,;!?@@@\"'\n\r\t\u00a0\u2028\u3000😂\u200d-"
texts = st.text(alphabet=st.sampled_from(list(ALPHABET)), max_size=30)


# Pieces of e-mails, mentions, URLs and phone numbers, to be cut and joined at random.
CONTACT_PIECES = [
    "@",
    "@ab_c",
    "x@y.ru",
    "://",
    "http",
    "www.",
    ".ru",
    ".com",
    "t.me/",
    "+7",
    "912",
    "34-56",
    "(",
    ")",
    "\x00",
    " ",
    "\n",
    "a",
    "Б",
    "1",
    ".",
    ",",
    "example",
]
contact_texts = st.lists(st.sampled_from(CONTACT_PIECES), max_size=12).map("".join)


@given(st.lists(st.one_of(texts, contact_texts), max_size=30), st.booleans())
def test_batch_cleaning_is_text_by_text_cleaning(batch: list[str], anonymize_contacts: bool) -> None:
    """The scans over the joined batch must never skip a text that anonymisation would change."""
    expected = [clean_text(text, anonymize_contacts) for text in batch]
    assert clean_texts(batch, anonymize_contacts) == expected
    normal = [normalize(text) for text in batch]
    changed = anonymized_texts(normal)
    assert normal == [clean_text(text) for text in batch]
    assert changed == {i for i, text in enumerate(batch) if normal[i] != normalize(text)}


@given(st.lists(st.lists(texts, min_size=4, max_size=4), max_size=20))
def test_csv_rows_read_back_unchanged(rows: list[list[str]]) -> None:
    out = io.StringIO(newline="")
    write_rows(out, rows)
    assert list(csv.reader(io.StringIO(out.getvalue(), newline=""))) == rows
    if not any("\r" in cell for row in rows for cell in row):  # we quote a lone "\r" too
        assert out.getvalue() == _stdlib_csv(rows)


def _stdlib_csv(rows: list[list[str]]) -> str:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_header_names_contexts_oldest_first() -> None:
    assert csv_header(3) == ["context_3", "context_2", "context_1", "response"]
    assert csv_header(1) == ["context_1", "response"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("звони +7 999 123-45-67 вечером", "звони [PHONE] вечером"),
        ("8 (912) 345 67 89", "[PHONE]"),
        ("мой 89123456789.", "мой [PHONE]."),
        ("пиши ivan.petrov+chat@gmail.com!", "пиши [EMAIL]!"),
        ("спроси у @durov_fan и @Vasya_P", "спроси у [MENTION] и [MENTION]"),
        ("тут https://habr.com/ru/articles/1/?a=b, а тут www.ya.ru.", "тут [URL], а тут [URL]."),
        ("канал t.me/some_channel и сайт example.org/path", "канал [URL] и сайт [URL]"),
    ],
)
def test_contacts_become_placeholders(text: str, expected: str) -> None:
    assert anonymize(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "встреча в 2023 году в 19:30",
        "счёт 3:1, 12 очков",
        "т.е. всё ок",
        "цена 1 500 руб",
        "ну @ да",
        "email@",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert anonymize(text) == text


def test_mention_name_entities_hide_the_name_and_keep_the_rest() -> None:
    parts = ["Спасибо, ", {"type": "mention_name", "text": "Анна Каренина", "user_id": 5}, "!"]
    assert clean_text(parts) == "Спасибо, [NAME]!"
    assert clean_text(parts, anonymize_contacts=False) == "Спасибо, Анна Каренина!"


def test_speaker_tag_lookalikes_are_normalised_before_anonymising() -> None:
    assert clean_text("@@vasya_p,  привет\n") == "[MENTION], привет"


def test_text_without_plain_text_is_empty() -> None:
    assert clean_text([]) == ""
    assert clean_text([{"type": "bold"}, {"text": 5}]) == ""
    assert clean_text(None) == ""


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("https://example.com/a.png", "only_link"),
        ("[URL] [URL]", "only_link"),
        ("www.example.com, https://x.org", "only_link"),
        ("😂", "only_emoji"),
        ("👍🏻 ❤️ 🇷🇺", "only_emoji"),
        ("👨‍👩‍👧", "only_emoji"),
        ("ахах 😂", None),
        ("смотри https://example.com", None),
        (")))", None),
    ],
)
def test_junk_responses_are_recognised(text: str, kind: str | None) -> None:
    assert junk_kind(text) == kind
