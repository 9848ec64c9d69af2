"""Input shapes (single chat, full account, several files) and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from finetuning.prepare import records as prepare_records
from finetuning.prepare.command import main
from tests.finetuning.export_fixtures import account, as_lists, chat, msg, prepare, write_json

REPO = Path(__file__).resolve().parents[2]


def test_full_account_export_reads_every_chat_and_keeps_replies_inside_their_chat(tmp_path: Path) -> None:
    first = chat(
        [msg(1, "anna", "Вопрос в первом чате"), msg(2, "boris", "Ответ в первом", reply_to=1)],
        name="Первый",
        chat_id=1,
    )
    # the same message ids in another chat: replies must not cross chats
    second = chat(
        [msg(1, "vera", "Вопрос во втором чате"), msg(2, "gleb", "Ответ во втором", reply_to=1)],
        name="Второй",
        chat_id=2,
    )
    export = account(first, second)
    export["left_chats"] = {"about": "", "list": [chat([msg(1, "anna", "Покинутый чат")], chat_id=3)]}
    rows, summary = prepare(tmp_path, export)
    assert as_lists(rows) == [
        ["Вопрос в первом чате"],
        ["Вопрос в первом чате", "Ответ в первом"],
        ["Вопрос во втором чате"],
        ["Вопрос во втором чате", "Ответ во втором"],
        ["Покинутый чат"],
    ]
    assert summary["chats"] == 3 and summary["messages_read"] == 5


def test_several_files_go_into_one_csv_without_repeats(tmp_path: Path) -> None:
    one = chat([msg(1, "anna", "Привет"), msg(2, "boris", "Здравствуй")])
    # an overlapping, later export of the same chat
    two = chat([msg(1, "anna", "Привет"), msg(2, "boris", "Здравствуй"), msg(3, "anna", "Как ты?")])
    rows, summary = prepare(tmp_path, one, two)
    assert as_lists(rows) == [["Привет"], ["Привет", "Здравствуй"], ["Привет", "Здравствуй", "Как ты?"]]
    assert summary["dropped"] == {"duplicate": 2}
    assert len(summary["inputs"]) == 2


def test_messages_may_come_before_the_chat_name(tmp_path: Path) -> None:
    path = tmp_path / "reordered.json"
    path.write_text(json.dumps({"messages": [msg(1, "anna", "Текст")], "name": "Чат"}), encoding="utf-8")
    rows, _ = prepare(tmp_path, path)
    assert as_lists(rows) == [["Текст"]]


def _bad_input_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = json.dumps(chat([msg(1, "anna", "Привет"), msg(2, "boris", "Пока")]), indent=1, ensure_ascii=False)
    cases = {
        "missing": (tmp_path / "nope.json", "no such file"),
        "truncated": (tmp_path / "truncated.json", "truncated JSON"),
        "malformed": (tmp_path / "malformed.json", "invalid JSON at line 8, column 12 (byte"),
        "not an export": (tmp_path / "list.json", "not a Telegram export"),
        "other object": (tmp_path / "other.json", 'no "messages" list'),
        "messages not a list": (tmp_path / "messages.json", '"messages" is not a list'),
        "empty": (tmp_path / "empty.json", "empty file"),
        "binary": (tmp_path / "binary.json", "invalid JSON"),
        "directory": (tmp_path / "folder.json", "not a regular file"),
    }
    cases["truncated"][0].write_text(good[: len(good) // 2], encoding="utf-8")
    malformed = good.replace('"type": "message"', '"type": message', 1)
    cases["malformed"][0].write_text(malformed, encoding="utf-8")
    cases["not an export"][0].write_text("[1, 2, 3]", encoding="utf-8")
    cases["other object"][0].write_text('{"name": "x", "items": []}', encoding="utf-8")
    cases["messages not a list"][0].write_text('{"name": "x", "messages": {"1": 2}}', encoding="utf-8")
    cases["empty"][0].write_bytes(b"")
    cases["binary"][0].write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    cases["directory"][0].mkdir()
    return cases


@pytest.mark.parametrize("mode", ["--helper-process", "--no-helper-process"])
@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "truncated",
        "malformed",
        "not an export",
        "other object",
        "messages not a list",
        "empty",
        "binary",
        "directory",
    ],
)
def test_bad_input_exits_with_one_line_naming_file_and_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, mode: str
) -> None:
    good = write_json(tmp_path / "good.json", chat([msg(1, "anna", "Привет")]))
    path, problem = _bad_input_cases(tmp_path)[case]
    output = tmp_path / "out.csv"
    output.write_text("previous,data\n", encoding="utf-8")
    code = main(
        [
            "--tg-history-path",
            str(good),
            "--tg-history-path",
            str(path),
            "--output-path",
            str(output),
            "--no-progress",
            mode,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and problem in err, err
    # a failed run leaves the previous CSV as it was, and no temporary files
    assert output.read_text(encoding="utf-8") == "previous,data\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_json_error_position_points_at_the_broken_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A large file, so that the error lies far past the first 64 KiB read.
    messages = [msg(i, "anna" if i % 2 else "boris", f"Сообщение номер {i}") for i in range(1, 3001)]
    text = json.dumps(chat(messages), indent=1, ensure_ascii=False)
    broken_at = text.index('"Сообщение номер 2500"')
    lines = text[:broken_at].split("\n")
    path = tmp_path / "broken.json"
    path.write_text(text[:broken_at] + "}" + text[broken_at + 1 :], encoding="utf-8")
    code = main(["--tg-history-path", str(path), "--output-path", str(tmp_path / "o.csv"), "--no-progress"])
    err = capsys.readouterr().err
    column, byte = len(lines[-1].encode()) + 1, len(text[:broken_at].encode()) + 1
    assert code == 1
    assert f"invalid JSON at line {len(lines)}, column {column} (byte {byte})" in err


def run_prepare_messages(export: Path, output: Path) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "finetuning.prepare", "--tg-history-path", str(export),
         "--output-path", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )  # fmt: skip


def test_command_line_error_has_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "truncated.json"
    content = '{"name": "x", "messages": [{"id": 1, "type": "mess'
    path.write_text(content, encoding="utf-8")
    result = run_prepare_messages(path, tmp_path / "o.csv")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]  # the progress bar may come first
    end = len(content)
    assert last_line == f"error: {path}: truncated JSON: the file ends at line 1, column {end} (byte {end})"
    assert not (tmp_path / "o.csv").exists()


def test_command_line_run_prints_summary_and_writes_it_next_to_the_csv(tmp_path: Path) -> None:
    path = write_json(tmp_path / "result.json", chat([msg(1, "anna", "Привет"), msg(2, "boris", "Привет!")]))
    output = tmp_path / "data_output" / "chat.csv"
    result = run_prepare_messages(path, output)
    assert result.returncode == 0, result.stderr
    assert "messages read: 2, rows written: 2" in result.stdout
    assert "reading exports" in result.stderr  # the tqdm bar
    summary = json.loads((tmp_path / "data_output" / "chat.summary.json").read_text(encoding="utf-8"))
    assert summary["rows_written"] == 2 and summary["options"]["anonymize"] is True


def test_helper_process_writes_the_same_csv_and_summary(tmp_path: Path) -> None:
    """Parsing in a helper process (the default with 2+ CPUs) must not change a byte."""
    talk = [
        msg(i, "anna" if i % 3 else "boris", f"Сообщение {i}, да", reply_to=i - 2 if i % 4 == 0 else None)
        for i in range(1, 60)
    ]
    one = chat([*talk, msg(60, "vera", "Переслано", forwarded_from="Канал")], chat_id=1)
    two = account(one, chat([msg(1, "gleb", "Другой чат"), msg(2, "anna", "Ага", reply_to=1)], chat_id=2))
    helper_rows, helper_summary = prepare(tmp_path, one, two, args=("--helper-process",), name="h.csv")
    single_rows, single_summary = prepare(tmp_path, one, two, args=("--no-helper-process",), name="s.csv")
    assert helper_rows == single_rows and len(helper_rows) > 40
    del helper_summary["output"], single_summary["output"]
    assert helper_summary == single_summary and helper_summary["chats"] == 3


@pytest.mark.parametrize("mode", ["--helper-process", "--no-helper-process"])
def test_batch_boundaries_change_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """Records travel in batches: a turn, a reply chain or a drop split by a batch boundary stays whole."""
    talk = [
        msg(
            i,
            "anna" if i % 5 in (1, 2) else ("boris" if i % 2 else "vera"),
            "Х" * 600 if i == 17 else f"Сообщение {i}, пиши a{i}@mail.ru",
            reply_to=i - 3 if i % 7 == 0 else None,
        )
        for i in range(1, 40)
    ]
    other = chat([msg(1, "gleb", "Другой чат"), msg(2, "anna", "Ага", reply_to=1)])
    export = account(chat(talk, chat_id=1), other)
    whole_rows, whole_summary = prepare(tmp_path, export, args=(mode,), name="whole.csv")
    monkeypatch.setattr(prepare_records, "BATCH", 2)
    split_rows, split_summary = prepare(tmp_path, export, args=(mode,), name="split.csv")
    assert split_rows == whole_rows and len(whole_rows) > 20
    del whole_summary["output"], split_summary["output"]
    assert split_summary == whole_summary and whole_summary["dropped"]["too_long"] == 1


@pytest.mark.parametrize("mode", ["--helper-process", "--no-helper-process"])
def test_broken_json_after_good_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(
        '{"messages": [{"id": 1, "type": "message", "text": "a"}, {"id": 2,, }]}', encoding="utf-8"
    )
    code = main(
        ["--tg-history-path", str(path), "--output-path", str(tmp_path / "o.csv"), "--no-progress", mode]
    )
    assert code == 1
    assert capsys.readouterr().err.strip().startswith(f"error: {path}: invalid JSON at line 1, column 67")


def test_unwritable_output_is_one_line_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_json(tmp_path / "good.json", chat([msg(1, "anna", "Привет")]))
    taken = tmp_path / "taken.csv"
    taken.mkdir()  # a directory where the CSV should go
    assert main(["--tg-history-path", str(good), "--output-path", str(taken), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(taken) in err and "directory" in err.lower(), err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_option_values_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--context-size", "0"], ["--max-gap-minutes", "-5"], ["--max-length", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["--tg-history-path", "a.json", "--output-path", "o.csv", *bad])
        assert exit_info.value.code == 2
        assert bad[0] in capsys.readouterr().err


def _talk() -> dict[str, Any]:
    """A chat with what the block decoder must get right: replies, a forward from a hidden
    account ("forwarded_from": null), elements that are not objects, formatted text."""
    messages: list[Any] = []
    for i in range(1, 61):
        who = ("anna", "boris", "vera")[i % 3]
        messages.append(msg(i, who, f"Реплика {i}", reply_to=i - 2 if i % 4 == 0 else None))
        if i % 10 == 0:
            messages.append(msg(1000 + i, "gleb", "Переслано", forwarded_from=None))
        if i % 15 == 0:
            messages.append(i)  # not an object
    messages.append(msg(61, "gleb", [{"type": "bold", "text": "жирный"}, " и обычный"]))
    return chat(messages)


@pytest.mark.parametrize("mode", ["--helper-process", "--no-helper-process"])
def test_the_files_layout_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """Telegram's own layout is decoded in blocks cut between messages (desktop_decoder.py); any other
    layout, or one that only starts like Telegram's, must give the same rows and counts."""
    from finetuning.prepare import desktop_decoder

    # Many blocks, some without a seam.
    monkeypatch.setattr(desktop_decoder, "_HEAD_BYTES", 400)
    monkeypatch.setattr(desktop_decoder, "_BLOCK_BYTES", 300)
    data = _talk()
    telegram = write_json(tmp_path / "telegram.json", data)
    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    # Telegram's start, then a message whose formatted text puts the seam
    # between messages ("\n  },\n  {") inside it: a block cut there does not
    # decode, and ijson takes over after the messages already read.
    seam_inside = tmp_path / "seam_inside.json"
    text = json.dumps(data, ensure_ascii=False, indent=1)
    formatted = '"text": [\n    {\n     "type": "bold",\n     "text": "жирный"\n    },'
    assert formatted in text
    seam_inside.write_text(
        text.replace(
            formatted,
            '"text": [\n  {"type": "bold", "text": "жирный"\n  },\n  {"type": "plain", "text": ""},',
        ),
        encoding="utf-8",
    )
    results = [
        prepare(tmp_path, path, args=(mode,), name=f"{path.stem}.csv")
        for path in (telegram, compact, seam_inside)
    ]
    for _, summary in results:
        del summary["output"], summary["inputs"]
    assert results[0] == results[1] == results[2]
    rows, summary = results[0]
    assert summary["dropped"]["forwarded"] == 6 and summary["dropped"]["invalid"] == 4
    assert ["жирный и обычный"] in [row[-1:] for row in as_lists(rows)]
    assert len(rows) > 30
