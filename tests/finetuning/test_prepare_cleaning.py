"""Text cleaning and CSV formatting, checked piece by piece."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finetuning.prepare.cleaning import join_text, junk_match
from finetuning.training_csv import context_columns, csv_header, write_rows
from tests.dialogue.test_anonymize import texts


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
    # What the writer names, the reader finds, whatever the order of the file's columns.
    assert context_columns(csv_header(12)) == csv_header(12)[:-1]
    assert context_columns(["response", "context_1", "context_10", "context_2", "note"]) == [
        "context_10",
        "context_2",
        "context_1",
    ]


def test_mention_name_entities_hide_the_name_and_keep_the_rest() -> None:
    parts = ["Спасибо, ", {"type": "mention_name", "text": "Анна Каренина", "user_id": 5}, "!"]
    mentioned: list[str] = []
    assert join_text(parts, True, mentioned) == "Спасибо, [NAME]!"
    assert mentioned == ["Анна Каренина"]
    assert join_text(parts, False) == "Спасибо, Анна Каренина!"


def test_text_without_plain_text_is_empty() -> None:
    assert join_text([], True) == ""
    assert join_text([{"type": "bold"}, {"text": 5}], True) == ""
    assert join_text(None, True) == ""


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("https://example.com/a.png", "only_link"),
        ("[URL] [URL]", "only_link"),
        ("www.example.com, https://x.org", "only_link"),
        ("😂", "only_emoji"),
        ("👍🏻 ❤️ 🇷🇺", "only_emoji"),
        ("👨‍👩‍👧", "only_emoji"),
        (")))", "only_punctuation"),
        ("?!", "only_punctuation"),
        ("((( 😂", "only_punctuation"),
        ("100500", "only_number"),
        ("+1", "only_number"),
        ("[NAME]!", "only_placeholder"),
        ("[URL] (((", "only_placeholder"),
        ("[MENTION] [PHONE]", "only_placeholder"),
        ("ахах 😂", None),
        ("смотри https://example.com", None),
        ("[NAME], привет", None),
        ("в 10 у входа", None),
    ],
)
def test_junk_responses_are_recognised(text: str, kind: str | None) -> None:
    match = junk_match(text)
    assert (None if match is None else match.lastgroup) == kind
