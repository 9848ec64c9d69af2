"""A synthetic Telegram Desktop chat export, shaped like a real one, for benchmarks.

About 20% of the messages are replies, 15% have list-form (formatted) text,
and service messages, media without caption, stickers and forwarded posts are
mixed in. Written the way Telegram Desktop writes it (one-space indentation,
``text`` next to ``text_entities``), about 500 bytes per message.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

_WORDS = (
    "привет как дела что нового сегодня завтра вчера работа дом кот собака погода дождь солнце "
    "встреча пиво кофе чай код баг релиз тест сервер бот модель данные вечер утро ночь поезд "
    "метро такси магазин хлеб молоко книга фильм сериал игра музыка концерт отпуск море горы "
    "да нет может быть конечно наверное точно ладно окей спасибо пожалуйста извини понял"
).split()
_EMOJI = ["😂", "👍", "🔥", "🤔", "❤️", "😭"]


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(2, 18))
    text = " ".join(words).capitalize()
    roll = rng.random()
    if roll < 0.03:
        text += f" пиши на user{rng.randint(1, 99)}@example.com"
    elif roll < 0.05:
        text += f" звони +7 9{rng.randint(10, 99)} {rng.randint(100, 999)}-{rng.randint(10, 99)}-00"
    elif roll < 0.08:
        text += " " + rng.choice(_EMOJI)
    return text + rng.choice([".", "!", "?", ""])


def _entities(parts: list[Any]) -> list[dict[str, str]]:
    return [p if isinstance(p, dict) else {"type": "plain", "text": p} for p in parts]


def _list_text(rng: random.Random, users: list[tuple[str, str]]) -> list[Any]:
    kind = rng.randrange(4)
    if kind == 0:
        link = f"https://example.com/{rng.randint(1, 10**6)}"
        return [_sentence(rng) + " ", {"type": "link", "text": link}]
    if kind == 1:
        return [{"type": "mention", "text": f"@nick{rng.randint(1, 500)}"}, " " + _sentence(rng)]
    if kind == 2:
        return [_sentence(rng) + " ", {"type": "bold", "text": rng.choice(_WORDS)}, " " + _sentence(rng)]
    name, user_id = rng.choice(users)
    return [{"type": "mention_name", "text": name, "user_id": int(user_id[4:])}, ", " + _sentence(rng)]


def synthetic_messages(n_messages: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    users = [(f"Участник {i}", f"user{100000 + i}") for i in range(60)]
    messages: list[dict[str, Any]] = []
    now = 1_600_000_000
    text_ids: list[int] = []
    for msg_id in range(1, n_messages + 1):
        # Mostly seconds to minutes apart; every so often a pause of hours.
        now += int(rng.expovariate(1 / 90)) + (rng.randint(3600, 20000) if rng.random() < 0.01 else 0)
        date = f"2020-09-13T{(now // 3600) % 24:02d}:{(now // 60) % 60:02d}:{now % 60:02d}"
        name, user_id = rng.choice(users[:8]) if rng.random() < 0.7 else rng.choice(users)
        roll = rng.random()
        if roll < 0.04:
            messages.append(
                {
                    "id": msg_id,
                    "type": "service",
                    "date": date,
                    "date_unixtime": str(now),
                    "actor": name,
                    "actor_id": user_id,
                    "action": "invite_members",
                    "members": [rng.choice(users)[0]],
                    "text": "",
                    "text_entities": [],
                }
            )
            continue
        msg: dict[str, Any] = {
            "id": msg_id,
            "type": "message",
            "date": date,
            "date_unixtime": str(now),
            "from": name,
            "from_id": user_id,
        }
        if rng.random() < 0.03:
            msg["edited"] = date
            msg["edited_unixtime"] = str(now + 60)
        if text_ids and rng.random() < 0.2:
            # Replies go mostly to recent messages, sometimes far back.
            back = int(rng.expovariate(1 / 15)) if rng.random() < 0.9 else rng.randrange(len(text_ids))
            msg["reply_to_message_id"] = text_ids[max(0, len(text_ids) - 1 - back)]
        roll = rng.random()
        if roll < 0.05:
            msg.update(
                photo="(File not included. Change data exporting settings to download.)",
                width=1280,
                height=960,
                text="",
                text_entities=[],
            )
        elif roll < 0.08:
            msg.update(
                file="(File not included. Change data exporting settings to download.)",
                thumbnail="(File not included. Change data exporting settings to download.)",
                media_type="sticker",
                sticker_emoji=rng.choice(_EMOJI),
                width=512,
                height=512,
                text="",
                text_entities=[],
            )
        elif roll < 0.10:
            msg["forwarded_from"] = "Новостной канал"
            text = _sentence(rng)
            msg.update(text=text, text_entities=_entities([text]))
        elif roll < 0.25:
            parts = _list_text(rng, users)
            msg.update(text=parts, text_entities=_entities(parts))
        else:
            text = _sentence(rng)
            msg.update(text=text, text_entities=_entities([text]))
        if msg["text"]:
            text_ids.append(msg_id)
        messages.append(msg)
    return messages


def write_synthetic_export(path: Path, n_messages: int, seed: int = 0) -> Path:
    """Write a single-chat export of ``n_messages`` messages to ``path``."""
    export = {"name": "Синтетический чат", "type": "private_supergroup", "id": 1234567890}
    export["messages"] = synthetic_messages(n_messages, seed)  # type: ignore[assignment]
    with path.open("w", encoding="utf-8") as f:
        json.dump(export, f, ensure_ascii=False, indent=1)
    return path


if __name__ == "__main__":
    write_synthetic_export(Path(sys.argv[1]), int(sys.argv[2]))
