"""The flags of ``python -m finetuning.prepare``; a mistake in them is argparse's one-line usage error."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from dialogue.format import CONTEXT_SIZE


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return number


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m finetuning.prepare",
        description="Turn Telegram Desktop chat exports (JSON), or the bot's corpus, into a training CSV.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--tg-history-path",
        type=Path,
        action="append",
        help="exported result.json (single chat or whole account); repeat for more files",
    )
    source.add_argument(
        "--from-database",
        metavar="DATABASE_URL",
        help="the bot's learning corpus: postgresql://user@host/db or sqlite:///path.db",
    )
    parser.add_argument(
        "--chat-id", type=int, action="append", help="with --from-database: only this chat (repeatable)"
    )
    parser.add_argument(
        "--since", type=utc_day, help="with --from-database: only messages sent from this day on (UTC)"
    )
    parser.add_argument("--output-path", type=Path, required=True, help="CSV file to write")
    parser.add_argument(
        "--context-size",
        type=positive_int,
        default=CONTEXT_SIZE,
        help="messages of context per row (default %(default)s)",
    )
    parser.add_argument(
        "--max-gap-minutes",
        type=_positive_float,
        default=30.0,
        help="a longer pause starts a new conversation (default %(default)s)",
    )
    parser.add_argument(
        "--max-length",
        type=positive_int,
        default=500,
        help="responses longer than this many characters are dropped, and contexts cut to it "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--no-anonymize",
        dest="anonymize",
        action="store_false",
        help="keep names, mentions, links, e-mails, phone and card numbers and IPs as they are",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.add_argument(
        "--helper-process",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="parse the exports in a second process (default: with 2 or more CPUs)",
    )
    args = parser.parse_args(argv)
    if args.from_database is None and (args.chat_id or args.since):
        parser.error("--chat-id and --since go with --from-database")
    return args


def utc_day(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError("not a date YYYY-MM-DD") from None
