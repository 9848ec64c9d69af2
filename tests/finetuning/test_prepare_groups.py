"""Rows from a group export: group- and channel-authored talk, long turns, names, contacts, junk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.finetuning.export_fixtures import account, as_lists, chat, prepare
from tests.finetuning.group_exports import (
    HALF,
    LONG_PARENT,
    as_channel,
    as_group,
    broadcast_channel,
    person,
    work_group,
)

Prepared = tuple[list[list[str]], dict[str, Any]]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    rows, summary = prepare(tmp_path_factory.mktemp("group"), account(work_group(), broadcast_channel()))
    return as_lists(rows), summary


def test_group_and_channel_authors_are_speakers_with_replies(prepared: Prepared) -> None:
    rows, _ = prepared
    assert ["Завтра планёрка в 10, всем быть", "А можно онлайн?", "Можно, ссылку пришлю"] in rows
    assert ["Вышел новый регламент отпусков", "Наконец-то"] in rows


def test_group_authored_messages_merge_and_alternate_like_a_person(tmp_path: Path) -> None:
    export = chat(
        [
            as_group(1, "Напоминаю"),
            as_group(2, "про отчёт"),
            person(3, "anna", "Сделаю"),
            as_channel(4, "Пост"),
        ]
    )
    rows, _ = prepare(tmp_path, export)
    assert as_lists(rows) == [
        ["Напоминаю про отчёт"],
        ["Напоминаю про отчёт", "Сделаю"],
        ["Напоминаю про отчёт", "Сделаю", "Пост"],
    ]


def test_a_broadcast_channel_export_is_skipped_and_counted(prepared: Prepared, tmp_path: Path) -> None:
    rows, summary = prepared
    assert not [row for row in rows if any("Пост номер" in cell for cell in row)]
    assert summary["dropped"]["broadcast_channel"] == 3 and summary["chats"] == 2
    rows_alone, summary_alone = prepare(tmp_path, broadcast_channel())
    assert rows_alone == [] and summary_alone["dropped"] == {"broadcast_channel": 3}


def test_a_long_parent_is_cut_to_its_last_words_and_keeps_its_reply(prepared: Prepared) -> None:
    rows, _ = prepared
    [context] = [row[:-1] for row in rows if row[-1] == "Я приду"]
    assert len(context) == 1 and len(context[0]) <= 500
    assert context[0].endswith("а в конце вопрос: кто придёт?") and LONG_PARENT.endswith(context[0])
    assert context[0].startswith("слово ")  # a whole word
    assert not [row for row in rows if row[-1] == LONG_PARENT]


def test_the_length_limit_applies_to_merged_turns(prepared: Prepared) -> None:
    rows, summary = prepared
    assert max(len(cell) for row in rows for cell in row) <= 500
    # two messages of 299 characters merge to 599: no response, a context cut to 500
    [context] = [row[:-1] for row in rows if row[-1] == "Много текста"]
    assert context == [" ".join([HALF, HALF])[-500:].partition(" ")[2]]
    assert summary["dropped"]["too_long"] == 2  # the merged turn and the long parent


def test_a_merged_response_keeps_the_reply_parent_of_its_first_message(prepared: Prepared) -> None:
    rows, _ = prepared
    assert ["Кто закажет пиццу?", "Я закажу Но позже"] in rows


def test_participants_names_in_plain_text_become_name(prepared: Prepared, tmp_path: Path) -> None:
    rows, _ = prepared
    responses = [row[-1] for row in rows]
    assert "Спроси у [NAME], она знает" in responses
    assert "Скажи [NAME] и [NAME], что [NAME] придёт" in responses
    assert "Передай [NAME] и [NAME] привет, а с [NAME] я поговорю" in responses
    # a user named by a mention_name entity, who never writes in the export
    assert "Спасибо, [NAME]!" in responses
    assert "[NAME] тоже спасибо, и [NAME] привет" in responses
    text = " ".join(cell for row in rows for cell in row).lower()
    for stem in ("анн", "смирнов", "борис", "петров", "вер", "кузнецов", "gleb", "ivanov", "дарь", "орлов"):
        assert f" {stem}" not in text, stem
    raw, _ = prepare(tmp_path, work_group(), args=("--no-anonymize",))
    assert "Скажи Борису и Смирновой, что Вера придёт" in [row["response"] for row in raw]
    assert "Передай gleb и Ivanov привет, а с Верой Кузнецовой я поговорю" in [row["response"] for row in raw]


def test_domains_card_numbers_and_ips_become_placeholders(prepared: Prepared) -> None:
    responses = [row[-1] for row in prepared[0]]
    assert "Смотри [URL] и [URL], а ещё [URL]" in responses
    assert "Переведи на [CARD], а не на 1234 5678 9012 3456" in responses  # the second fails Luhn
    assert "Сервер [IP], резерв [IP], в 19:30" in responses


def test_bracket_punctuation_number_and_placeholder_responses_are_dropped(prepared: Prepared) -> None:
    rows, summary = prepared
    responses = [row[-1] for row in rows]
    for junk in (")))", "?!", "100500", "[URL] ((("):
        assert junk not in responses
    assert {k: summary["dropped"][k] for k in ("only_punctuation", "only_number", "only_placeholder")} == {
        "only_punctuation": 2,
        "only_number": 1,
        "only_placeholder": 1,
    }
    # still context: the answer to a smiley sees it
    assert [")))", "Отличная новость"] in rows


def test_summary_counts_rows_without_context(prepared: Prepared) -> None:
    rows, summary = prepared
    assert summary["rows_without_context"] == sum(1 for row in rows if len(row) == 1) == 4
    assert summary["rows_written"] == len(rows)


def test_the_helper_process_anonymises_alike(tmp_path: Path) -> None:
    """Mentioned names travel from the helper process with their batch."""
    export = account(work_group(), broadcast_channel())
    helper, helper_summary = prepare(tmp_path, export, args=("--helper-process",), name="h.csv")
    single, single_summary = prepare(tmp_path, export, args=("--no-helper-process",), name="s.csv")
    assert helper == single and "[NAME] тоже спасибо, и [NAME] привет" in [row["response"] for row in helper]
    del helper_summary["output"], single_summary["output"]
    assert helper_summary == single_summary
