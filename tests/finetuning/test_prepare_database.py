"""python -m finetuning.prepare --from-database: the bot's corpus, on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from benchmarks.support.databases import temporary_pg_database
from finetuning.prepare.command import main
from tests.finetuning.corpus_fixtures import Stored, as_export, plain_url, sqlite_url, store_corpus

CINEMA = -1001
GREETING = -1002
OLD = -1003
MESSAGES = [
    Stored(CINEMA, 1, "a", "кто идёт в кино вечером?", 0),
    Stored(CINEMA, 2, "b", "а во сколько сеанс?", 1),
    Stored(CINEMA, 3, "c", "я иду", 2, reply_to=1),
    Stored(CINEMA, 4, "a", "в семь", 3, reply_to=3),
    Stored(CINEMA, 5, "b", "[URL]", 4),  # anonymised by the bot: a bare link, dropped as one
    Stored(CINEMA, 6, "c", "   ", 5),  # nothing left after normalising
    Stored(CINEMA, 7, "a", "а я  про   вчерашнее", 6, reply_to=900),  # its parent was never stored
    Stored(GREETING, 1, "d", "привет", 100),
    Stored(GREETING, 2, "e", "привет, как дела?", 101, reply_to=1),
    Stored(OLD, 10, "d", "давно это было", -2000),  # 2023-11-13
    Stored(OLD, 11, "e", "да, давно", -1999, reply_to=10),
]


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))[1:]


async def prepare(*argv: str) -> int:
    # The command runs its own event loop: it is given a thread of its own, as a shell would.
    return await asyncio.to_thread(main, [*argv, "--no-progress"])


@pytest.fixture(params=["postgresql", "sqlite"])
async def corpus_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "postgresql":
        async with temporary_pg_database() as url:
            await store_corpus(url, MESSAGES)
            yield plain_url(url)
    else:
        url = sqlite_url(tmp_path / "bot.sqlite3")
        await store_corpus(url, MESSAGES)
        yield plain_url(url)


async def test_from_database_gives_reply_chains_as_context_and_the_drop_rules(
    corpus_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "corpus.csv"
    assert await prepare("--from-database", corpus_url, "--output-path", str(out)) == 0
    rows = read_csv(out)
    # A reply's context is its chain (1 -> 3 -> 4), not the messages just before it.
    assert ["", "", "кто идёт в кино вечером?", "я иду"] in rows
    assert ["", "кто идёт в кино вечером?", "я иду", "в семь"] in rows
    assert ["", "", "привет", "привет, как дела?"] in rows
    assert ["", "", "давно это было", "да, давно"] in rows
    responses = [row[-1] for row in rows]
    assert "[URL]" not in responses and "а я про вчерашнее" in responses  # normalised like an export's
    summary = json.loads(out.with_name("corpus.summary.json").read_text())
    assert summary["chats"] == 3 and summary["messages_read"] == len(MESSAGES)
    assert summary["dropped"] == {"empty": 1, "only_link": 1}
    assert summary["replies_with_parent_in_file"] == 4 and summary["replies_to_messages_not_in_file"] == 1
    assert "password" not in json.dumps(summary)


async def test_chat_id_and_since_choose_the_messages(corpus_url: str, tmp_path: Path) -> None:
    out = tmp_path / "some.csv"
    argv = ["--from-database", corpus_url, "--output-path", str(out)]
    assert await prepare(*argv, "--chat-id", str(GREETING), "--chat-id", str(OLD)) == 0
    assert {row[-1] for row in read_csv(out)} == {
        "привет",
        "привет, как дела?",
        "давно это было",
        "да, давно",
    }
    assert await prepare(*argv, "--since", "2023-11-14") == 0
    responses = {row[-1] for row in read_csv(out)}
    assert "да, давно" not in responses and "в семь" in responses and "привет" in responses


async def test_the_same_messages_give_the_same_csv_and_summary_as_an_export(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "bot.sqlite3")
    await store_corpus(url, MESSAGES)
    export = tmp_path / "result.json"
    export.write_text(json.dumps(as_export(MESSAGES), ensure_ascii=False))
    from_db, from_export = tmp_path / "db.csv", tmp_path / "export.csv"
    assert await prepare("--from-database", plain_url(url), "--output-path", str(from_db)) == 0
    assert (
        await prepare("--tg-history-path", str(export), "--no-anonymize", "--output-path", str(from_export))
        == 0
    )
    assert from_db.read_text() == from_export.read_text()
    db_summary, export_summary = (
        json.loads(p.with_name(p.stem + ".summary.json").read_text()) for p in (from_db, from_export)
    )
    for key in ("chats", "messages_read", "rows_written", "rows_without_context", "dropped"):
        assert db_summary[key] == export_summary[key], key


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nonsense", "not a database URL"),
        ("mysql://user@host/db", "unsupported database 'mysql'"),
        ("sqlite:///{tmp}/missing.sqlite3", "no such SQLite database file"),
        ("postgresql://postgres:hunter2@127.0.0.1:9/corpus", "postgresql://postgres:***@127.0.0.1:9/corpus"),
        ("sqlite:///{tmp}/not-migrated.sqlite3", "no such table: corpus_message"),
    ],
)
async def test_a_bad_or_unreachable_database_is_one_line(
    url: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "not-migrated.sqlite3").write_bytes(b"")
    out = tmp_path / "corpus.csv"
    assert await prepare("--from-database", url.format(tmp=tmp_path), "--output-path", str(out)) == 1
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err
    assert "hunter2" not in err and "Traceback" not in err
    assert not out.exists()


def test_chat_id_without_database_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--tg-history-path", "x.json", "--chat-id", "1", "--output-path", str(tmp_path / "x.csv")])
    assert stop.value.code == 2 and "--chat-id and --since go with --from-database" in capsys.readouterr().err
