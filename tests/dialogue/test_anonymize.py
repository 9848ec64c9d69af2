"""Anonymisation of chat text (dialogue/anonymize.py): contacts and participants' names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialogue.anonymize import Names, anonymize, anonymized_texts
from dialogue.format import normalize

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
    "site.de",
    "кафе.рф",
    "4111 1111 1111 1111",
    "192.168.0.1",
    "2001:db8::1",
    "::",
    ":",
    "анн",
    "Анна",
]
contact_texts = st.lists(st.sampled_from(CONTACT_PIECES), max_size=12).map("".join)


@given(st.lists(st.one_of(texts, contact_texts), max_size=30))
def test_batch_anonymisation_is_text_by_text_anonymisation(batch: list[str]) -> None:
    """The scans over the joined batch must never skip a text that anonymisation would change."""
    normal = [normalize(text) for text in batch]
    expected = [anonymize(text) for text in normal]
    anonymized_texts(normal)
    assert normal == expected


@given(st.lists(st.one_of(texts, contact_texts), max_size=30))
def test_batch_name_replacement_is_text_by_text(batch: list[str]) -> None:
    normal = [normalize(text) for text in batch]
    names = Names(["Анна Смирнова"])
    expected = []
    for text in normal:
        one = [text]
        names.replace_in(one)
        expected.append(one[0])
    names.replace_in(normal)
    assert normal == expected


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
        ("смотри site.de/page, docs.example.co.uk и кафе.рф.", "смотри [URL], [URL] и [URL]."),
        ("сервер на github.io:8080/app", "сервер на [URL]"),
        ("карта 4111 1111 1111 1111, вторая 5500-0000-0000-0004", "карта [CARD], вторая [CARD]"),
        ("адрес 192.168.10.25, шлюз 10.0.0.1.", "адрес [IP], шлюз [IP]."),
        ("v6: 2001:db8::8a2e:370:7334 и ::1", "v6: [IP] и [IP]"),
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
        "номер 1234 5678 9012 3456 не карта",  # fails the Luhn check
        "т.е. ок, в 19.30, версия 1.2.3",
        "привет.как дела",  # no public suffix
        "время 12:30:45, счёт 2:1",
        "999.1.2.3",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert anonymize(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Спроси у Анны и Бориса", "Спроси у [NAME] и [NAME]"),
        ("анну, анне, анной, АННА", "[NAME], [NAME], [NAME], [NAME]"),
        ("со Смирновой и Петровым", "со [NAME] и [NAME]"),
        ("Анна Смирнова пришла", "[NAME] пришла"),  # a full name is one [NAME]
        ("Дмитрию и Дмитрием", "[NAME] и [NAME]"),
        ("Достоевского читал", "[NAME] читал"),
        ("привет gleb и GLEB", "привет [NAME] и [NAME]"),
        ("Аннотация и Борисоглебск", "Аннотация и Борисоглебск"),  # whole words only
    ],
)
def test_participants_names_are_replaced_in_their_forms(text: str, expected: str) -> None:
    names = Names(["Анна Смирнова", "Борис Петров", "Дмитрий", "Фёдор Достоевский", "Gleb"])
    texts = [text]
    names.replace_in(texts)
    assert texts == [expected]
