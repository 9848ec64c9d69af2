"""Exports of the cases real group exports showed (issue 12), built from export_fixtures' pieces.

``work_group()`` is one supergroup export with all of them; the tests check
its rows case by case, and the before/after summaries of the change were taken
on it. ``broadcast_channel()`` is a channel's own export.
"""

from __future__ import annotations

from typing import Any

from tests.finetuning.export_fixtures import START, chat, msg

GROUP_ID = "channel1500000001"  # an anonymous admin writes as the group itself
CHANNEL_ID = "channel1600000002"  # a post "sent as channel" inside the group
PEOPLE = {
    "anna": "Анна Смирнова",
    "boris": "Борис Петров",
    "vera": "Вера Кузнецова",
    "gleb": "Gleb Ivanov",
}
LONG_PARENT = " ".join(["слово"] * 120) + " а в конце вопрос: кто придёт?"  # over 500 characters
HALF = " ".join(["часть"] * 50)  # 299 characters: two of them merge to 599


def person(message_id: int, who: str, text: Any, **extra: Any) -> dict[str, Any]:
    """A message whose ``from`` is the person's full name, as Telegram Desktop writes it."""
    return msg(message_id, who, text, **extra) | {"from": PEOPLE[who]}


def as_group(message_id: int, text: Any, **extra: Any) -> dict[str, Any]:
    return msg(message_id, GROUP_ID, text, **extra) | {"from": "Рабочая группа"}


def as_channel(message_id: int, text: Any, **extra: Any) -> dict[str, Any]:
    return msg(message_id, CHANNEL_ID, text, **extra) | {"from": "Новости отдела"}


def work_group() -> dict[str, Any]:
    """A work group's supergroup export: group- and channel-authored talk, names, contacts, junk."""
    messages = [
        # group- and channel-authored messages with replies
        as_group(1, "Завтра планёрка в 10, всем быть"),
        person(2, "anna", "А можно онлайн?", reply_to=1),
        as_group(3, "Можно, ссылку пришлю", reply_to=2),
        as_channel(4, "Вышел новый регламент отпусков"),
        person(5, "boris", "Наконец-то", reply_to=4),
        # a long parent and its reply
        person(6, "vera", LONG_PARENT, minute=60),
        person(7, "gleb", "Я приду", reply_to=6, minute=61),
        # a merged turn over the limit: as a response dropped, as context cut
        person(8, "anna", HALF, minute=120),
        person(9, "anna", HALF, minute=121),
        person(10, "boris", "Много текста", minute=122),
        # a merged response keeps the reply parent of its first message
        person(11, "vera", "Кто закажет пиццу?", minute=180),
        person(12, "gleb", "Тут обсуждаем отчёт", minute=181),
        person(13, "boris", "Я закажу", reply_to=11, minute=182),
        person(14, "boris", "Но позже", minute=183),
        # names in plain text, with Russian endings
        person(15, "vera", "Спроси у Анны, она знает", minute=240),
        person(16, "gleb", "Скажи Борису и Смирновой, что Вера придёт", minute=241),
        person(17, "anna", "Передай gleb и Ivanov привет, а с Верой Кузнецовой я поговорю", minute=242),
        person(
            18,
            "boris",
            ["Спасибо, ", {"type": "mention_name", "text": "Дарья Орлова", "user_id": 1005}, "!"],
            minute=243,
        ),
        person(19, "vera", "Дарье тоже спасибо, и Орловой привет", minute=244),
        # foreign domains, a card number and IP addresses
        person(20, "gleb", "Смотри site.de/page и docs.example.co.uk, а ещё кафе.рф", minute=300),
        person(21, "anna", "Переведи на 4111 1111 1111 1111, а не на 1234 5678 9012 3456", minute=301),
        person(22, "boris", "Сервер 192.168.10.25, резерв 2001:db8::8a2e:370:7334, в 19:30", minute=302),
        # junk responses
        person(23, "vera", ")))", minute=360),
        person(24, "gleb", "Отличная новость", minute=361),
        person(25, "anna", "?!", minute=362),
        person(26, "boris", "Договорились", minute=363),
        person(27, "vera", "100500", minute=364),
        person(28, "gleb", "Ну ладно", minute=365),
        person(29, "anna", "[URL] (((", minute=366),
    ]
    return chat(messages, name="Рабочая группа", chat_id=1500000001)


def broadcast_channel() -> dict[str, Any]:
    """A channel's own export: every message is a post of the channel."""
    posts = [
        msg(i, "channel1700000003", f"Пост номер {i}", minute=i) | {"from": "Канал новостей"}
        for i in range(1, 4)
    ]
    return {"name": "Канал новостей", "type": "public_channel", "id": 1700000003, "messages": posts}


__all__ = ["START", "broadcast_channel", "work_group"]
