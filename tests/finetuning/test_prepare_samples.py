"""Rows that data preparation writes: contexts, replies, conversations, cleaning."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.finetuning.export_fixtures import as_lists, chat, msg, prepare, service


def test_header_and_consecutive_context_oldest_first(tmp_path: Path) -> None:
    export = chat(
        [
            msg(1, "anna", "Привет"),
            msg(2, "boris", "Привет, как дела?"),
            msg(3, "anna", "Нормально"),
            msg(4, "boris", "Пойдём гулять"),
            msg(5, "anna", "Давай"),
        ]
    )
    rows, summary = prepare(tmp_path, export)
    assert list(rows[0]) == ["context_3", "context_2", "context_1", "response"]
    assert [list(r.values()) for r in rows] == [
        ["", "", "", "Привет"],
        ["", "", "Привет", "Привет, как дела?"],
        ["", "Привет", "Привет, как дела?", "Нормально"],
        ["Привет", "Привет, как дела?", "Нормально", "Пойдём гулять"],
        ["Привет, как дела?", "Нормально", "Пойдём гулять", "Давай"],
    ]
    assert summary["messages_read"] == 5 and summary["rows_written"] == 5
    # pandas reads the same columns, as the original project's CSVs
    frame = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert list(frame.columns) == ["context_3", "context_2", "context_1", "response"]
    assert frame["response"].tolist() == [row["response"] for row in rows]


def test_same_author_messages_are_one_turn(tmp_path: Path) -> None:
    export = chat(
        [
            msg(1, "anna", "Слушай"),
            msg(2, "anna", "есть\nвопрос"),
            msg(3, "boris", "Да?"),
            msg(4, "boris", "Спрашивай"),
            msg(5, "anna", "Где ключи"),
        ]
    )
    rows, _ = prepare(tmp_path, export)
    assert as_lists(rows) == [
        ["Слушай есть вопрос"],
        ["Слушай есть вопрос", "Да? Спрашивай"],
        ["Слушай есть вопрос", "Да? Спрашивай", "Где ключи"],
    ]


def test_reply_gets_its_chain_and_every_branch_is_a_row(tmp_path: Path) -> None:
    export = chat(
        [
            msg(1, "anna", "Кто идёт в кино?"),
            msg(2, "boris", "Погода сегодня ужасная"),
            msg(3, "vera", "Я иду", reply_to=1),
            msg(4, "gleb", "Я тоже", reply_to=1),
            msg(5, "anna", "Отлично, Вера", reply_to=3),
            msg(6, "boris", "Зонт не забудьте"),
        ]
    )
    rows, summary = prepare(tmp_path, export)
    got = as_lists(rows)
    # the replies see their thread, not the unrelated message in between
    assert ["Кто идёт в кино?", "Я иду"] in got
    assert ["Кто идёт в кино?", "Я тоже"] in got
    assert ["Кто идёт в кино?", "Я иду", "Отлично, Вера"] in got
    # a plain message after the thread sees the turns before it
    assert got[-1] == ["Я иду", "Я тоже", "Отлично, Вера", "Зонт не забудьте"]
    assert summary["replies_with_parent_in_file"] == 3


def test_reply_chain_is_capped_at_context_size(tmp_path: Path) -> None:
    people = ["anna", "boris", "vera", "gleb", "anna", "boris"]
    export = chat(
        [
            msg(i, who, f"Реплика {i}", reply_to=i - 1 if i > 1 else None)
            for i, who in enumerate(people, start=1)
        ]
    )
    rows, _ = prepare(tmp_path, export)
    assert as_lists(rows)[-1] == ["Реплика 3", "Реплика 4", "Реплика 5", "Реплика 6"]
    rows, _ = prepare(tmp_path, export, args=("--context-size", "2"), name="two.csv")
    assert list(rows[0]) == ["context_2", "context_1", "response"]
    assert as_lists(rows)[-1] == ["Реплика 4", "Реплика 5", "Реплика 6"]


def test_reply_to_a_message_outside_the_file_falls_back_to_the_conversation(tmp_path: Path) -> None:
    export = chat([msg(10, "anna", "Всем привет"), msg(11, "boris", "Согласен", reply_to=3)])
    rows, summary = prepare(tmp_path, export)
    assert as_lists(rows) == [["Всем привет"], ["Всем привет", "Согласен"]]
    assert summary["replies_to_messages_not_in_file"] == 1


def test_a_long_pause_starts_a_new_conversation(tmp_path: Path) -> None:
    export = chat(
        [
            msg(1, "anna", "Доброе утро", minute=0),
            msg(2, "boris", "Утро", minute=5),
            msg(3, "anna", "Кто на обед?", minute=5 + 31),
            msg(4, "boris", "Я", minute=5 + 31 + 2),
        ]
    )
    rows, _ = prepare(tmp_path, export)
    assert as_lists(rows) == [
        ["Доброе утро"],
        ["Доброе утро", "Утро"],
        ["Кто на обед?"],
        ["Кто на обед?", "Я"],
    ]
    rows, _ = prepare(tmp_path, export, args=("--max-gap-minutes", "60"), name="long.csv")
    assert as_lists(rows)[2] == ["Доброе утро", "Утро", "Кто на обед?"]


def test_messages_that_are_not_someones_words_are_dropped_and_counted(tmp_path: Path) -> None:
    file_note = "(File not included. Change data exporting settings to download.)"
    export = chat(
        [
            msg(1, "anna", "Смотри"),
            msg(2, "anna", "", photo=file_note, width=10, height=10),
            msg(3, "anna", "", file=file_note, media_type="sticker", sticker_emoji="😂"),
            msg(4, "anna", "", poll={"question": "Да?", "answers": []}),
            msg(5, "anna", "", contact_information={"first_name": "A", "phone_number": "+7999"}),
            msg(6, "anna", "", location_information={"latitude": 1.0, "longitude": 2.0}),
            service(7),
            msg(8, "anna", "Без автора") | {"from_id": None},
            msg(9, "boris", "Красиво", photo=file_note),  # a caption is text
            msg(10, "vera", "Новость дня", forwarded_from="Новости"),
            msg(11, "gleb", "Ого"),
        ]
    )
    rows, summary = prepare(tmp_path, export)
    # the forward is dropped and ends the conversation: "Ого" is about it
    assert as_lists(rows) == [["Смотри"], ["Смотри", "Красиво"], ["Ого"]]
    assert summary["dropped"] == {"media": 5, "service": 1, "no_author": 1, "forwarded": 1}
    assert summary["messages_read"] == 11


def test_edited_messages_unknown_fields_and_new_types_are_taken_as_they_are(tmp_path: Path) -> None:
    export = chat(
        [
            msg(
                1,
                "anna",
                "Исправленный текст",
                edited="2023-11-14T22:20:00",
                edited_unixtime="1700000400",
                via_bot="@somebot",
                future_field={"x": [1, 2]},
            ),
            {"id": 2, "type": "brand_new_kind", "date_unixtime": str(1_700_000_120), "text": "???"},
            msg(3, "boris", "Понял"),
        ]
    )
    rows, summary = prepare(tmp_path, export)
    assert as_lists(rows) == [["Исправленный текст"], ["Исправленный текст", "Понял"]]
    assert summary["dropped"] == {"other_type": 1}


def test_negative_ids_of_migrated_chats_resolve_replies(tmp_path: Path) -> None:
    export = chat(
        [
            msg(-300, "anna", "Старый вопрос"),
            msg(-299, "boris", "Что-то другое"),
            msg(5, "vera", "Ответ на старый вопрос", reply_to=-300),
        ]
    )
    rows, _ = prepare(tmp_path, export)
    assert as_lists(rows)[-1] == ["Старый вопрос", "Ответ на старый вопрос"]


def test_list_form_text_is_joined_from_every_entity_type(tmp_path: Path) -> None:
    text = [
        "Смотри ",
        {"type": "bold", "text": "жирный"},
        " и ",
        {"type": "italic", "text": "курсив"},
        ", ",
        {"type": "code", "text": "x = 1"},
        " ",
        {"type": "pre", "text": "print(x)", "language": "python"},
        " ",
        {"type": "text_link", "text": "ссылка", "href": "https://example.com/hidden"},
        " ",
        {"type": "hashtag", "text": "#кино"},
        " ",
        {"type": "bot_command", "text": "/start"},
        " ",
        {"type": "spoiler", "text": "тайна"},
        " ",
        {"type": "custom_emoji", "text": "🙂", "document_id": "1"},
        " ",
        {"type": "strikethrough", "text": "зачёркнуто"},
    ]
    rows, _ = prepare(tmp_path, chat([msg(1, "anna", text)]))
    assert rows[0]["response"] == (
        "Смотри жирный и курсив, x = 1 print(x) ссылка #кино /start тайна 🙂 зачёркнуто"
    )


def test_contacts_are_anonymised_unless_asked_not_to(tmp_path: Path) -> None:
    text = [
        {"type": "mention", "text": "@ivan_petrov"},
        " и ",
        {"type": "mention_name", "text": "Пётр Сидоров", "user_id": 77},
        ", почта ",
        {"type": "email", "text": "petr@example.org"},
        ", звони ",
        {"type": "phone", "text": "+7 (912) 345-67-89"},
        ", сайт ",
        {"type": "link", "text": "https://example.com/page?id=1"},
    ]
    plain = "Мой номер 89123456789, пиши на anna.k@mail.ru или в t.me/annak, и @boris_b тоже"
    export = chat([msg(1, "anna", text), msg(2, "boris", plain)])
    rows, _ = prepare(tmp_path, export)
    assert rows[0]["response"] == "[MENTION] и [NAME], почта [EMAIL], звони [PHONE], сайт [URL]"
    assert rows[1]["response"] == "Мой номер [PHONE], пиши на [EMAIL] или в [URL], и [MENTION] тоже"
    rows, _ = prepare(tmp_path, export, args=("--no-anonymize",), name="raw.csv")
    assert rows[0]["response"] == (
        "@ivan_petrov и Пётр Сидоров, почта petr@example.org, звони +7 (912) 345-67-89, "
        "сайт https://example.com/page?id=1"
    )
    assert rows[1]["response"] == plain


def test_junk_responses_are_dropped_but_still_give_context(tmp_path: Path) -> None:
    export = chat(
        [
            msg(1, "anna", "https://example.com/cat.jpg"),
            msg(2, "boris", "😂😂 👍🏻"),
            msg(3, "anna", "   \n  "),
            msg(4, "vera", "Это мой кот"),
            msg(5, "gleb", "Х" * 501),
            msg(6, "anna", "Кот милый"),
        ]
    )
    rows, summary = prepare(tmp_path, export)
    # the overlong message is no response, but the reply after it sees its end
    assert as_lists(rows) == [
        ["[URL]", "😂😂 👍🏻", "Это мой кот"],
        ["😂😂 👍🏻", "Это мой кот", "Х" * 500, "Кот милый"],
    ]
    assert summary["dropped"] == {"only_link": 1, "only_emoji": 1, "empty": 1, "too_long": 1}
    rows, summary = prepare(tmp_path, export, args=("--max-length", "1000"), name="long.csv")
    assert summary["dropped"].get("too_long") is None
    assert as_lists(rows)[-2][-1] == "Х" * 501


def test_exact_duplicate_rows_are_written_once(tmp_path: Path) -> None:
    export = chat(
        [
            msg(1, "anna", "Да", minute=0),
            msg(2, "anna", "Да", minute=100),
            msg(3, "boris", "Ок", minute=101),
            msg(4, "anna", "Да", minute=200),
            msg(5, "boris", "Ок", minute=201),
        ]
    )
    rows, summary = prepare(tmp_path, export)
    assert as_lists(rows) == [["Да"], ["Да", "Ок"]]
    assert summary["dropped"] == {"duplicate": 3}
    assert summary["rows_written"] == 2


def test_texts_with_quotes_commas_and_speaker_tags_survive_the_csv(tmp_path: Path) -> None:
    export = chat([msg(1, "anna", 'Он сказал: "да, конечно",\tи ушёл @@ВТОРОЙ@@'), msg(2, "boris", "Ясно")])
    rows, _ = prepare(tmp_path, export, args=("--no-anonymize",))
    assert as_lists(rows)[-1] == ['Он сказал: "да, конечно", и ушёл @ВТОРОЙ@', "Ясно"]


def test_broken_ids_cannot_loop_or_crash_the_reply_map(tmp_path: Path) -> None:
    export = chat(
        [
            msg(1, "anna", "Первое"),
            msg(2, "boris", "Второе", reply_to=1),
            msg(1, "vera", "Снова первое", reply_to=2),  # the same id again
            msg(3, "gleb", "Третье", reply_to=[1]),  # not an id at all
            msg(4, "anna", "Сам себе", reply_to=4),  # replies to itself
        ]
    )
    rows, summary = prepare(tmp_path, export)
    assert as_lists(rows) == [
        ["Первое"],
        ["Первое", "Второе"],
        ["Первое", "Второе", "Третье"],
        ["Первое", "Второе", "Третье", "Сам себе"],
    ]
    assert summary["dropped"] == {"repeated_id": 1}
