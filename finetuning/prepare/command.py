"""Telegram chat exports, or the bot's corpus -> training CSV (context_3, context_2, context_1, response).

    python -m finetuning.prepare \\
        --tg-history-path chat.json [--tg-history-path account.json ...] \\
        --output-path data_output/chats.csv [--context-size 3] [--no-anonymize] \\
        [--max-gap-minutes 30] [--max-length 500] [--[no-]helper-process]
    python -m finetuning.prepare --from-database DATABASE_URL [--chat-id ID ...] \\
        [--since YYYY-MM-DD] --output-path data_output/corpus.csv

The corpus the bot collects (table corpus_message) goes through the same
stages after its reading (database.py), less the anonymisation its texts
already had.

Two stages: exports are streamed and reduced to message records (reader,
records; in a helper process with 2+ CPUs) and anonymised (cleaning, names),
then rows are built chat by chat (samples), exact duplicate rows are dropped,
and the CSV is written to a temporary file that replaces the target only when
everything succeeded (finetuning.training_csv). What was kept and dropped, and
why, is printed and saved next to the CSV as ``NAME.summary.json``. Bad input
exits with status 1 and one line naming the file and the problem.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from finetuning.prepare.database import CorpusQuery, DatabaseError, database_records
from finetuning.prepare.flags import parse_args
from finetuning.prepare.reader import ExportError, warn_if_slow_backend
from finetuning.prepare.records import (
    RecordBatch,
    SampleOptions,
    clean_records,
    export_records,
    records_in_helper,
)
from finetuning.prepare.samples import Row, sample_rows
from finetuning.training_csv import atomic_text_file, write_header, write_rows


def summary_path(output_path: Path) -> Path:
    return output_path.with_name(output_path.stem + ".summary.json")


def prepare(
    paths: Sequence[Path],
    output_path: Path,
    options: SampleOptions,
    progress: bool = True,
    helper_process: bool | None = None,
) -> dict[str, Any]:
    """Write the CSV for ``paths`` to ``output_path`` atomically; return the summary.

    With ``helper_process`` the exports are parsed in a second process
    (records.py), which overlaps parsing with the rest; by default with
    two or more CPUs (:func:`helper_pays_off`).
    """
    if helper_process is None:
        helper_process = helper_pays_off()
    if output_path.is_dir():  # found now, not after all the work
        raise IsADirectoryError(errno.EISDIR, "Is a directory, not a CSV file", str(output_path))
    for path in paths:
        if not path.is_file():
            raise ExportError(path, "no such file" if not path.exists() else "not a regular file")
    stats: Counter[str] = Counter()
    read_records = records_in_helper if helper_process else export_records
    total_bytes = sum(path.stat().st_size for path in paths)
    with tqdm(
        total=total_bytes,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="reading exports",
        disable=not progress,
        mininterval=0.5,
    ) as bar:
        batches = clean_records(read_records(paths, options, stats, bar.update), options, paths)
        _write_csv(batches, output_path, options, stats)
    summary = _summary([str(p) for p in paths], output_path, options, stats)
    _write_json_atomically(summary_path(output_path), summary)
    return summary


def prepare_database(query: CorpusQuery, output_path: Path, options: SampleOptions) -> dict[str, Any]:
    """:func:`prepare` for the bot's corpus: the same rows, drop rules and summary as an export's."""
    if output_path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory, not a CSV file", str(output_path))
    stats: Counter[str] = Counter()
    options = replace(options, anonymize=False)  # the bot stores texts anonymised
    _write_csv(database_records(query, options, stats), output_path, options, stats)
    summary = _summary([query.shown()], output_path, options, stats)
    summary["options"].update(
        anonymized_before_storage=True,
        chat_ids=list(query.chat_ids) or "all",
        since=query.since.isoformat() if query.since else None,
        until=query.until.isoformat() if query.until else None,
    )
    _write_json_atomically(summary_path(output_path), summary)
    return summary


def _write_csv(
    batches: Iterable[RecordBatch], output_path: Path, options: SampleOptions, stats: Counter[str]
) -> None:
    with atomic_text_file(output_path) as out:
        write_header(out, options.context_size)
        for rows in unique_rows(sample_rows(batches, options, stats), stats):
            write_rows(out, rows)


def unique_rows(batches: Iterable[list[Row]], stats: Counter[str]) -> Iterator[list[Row]]:
    """The rows of all batches without exact repeats; counts them in ``stats``.

    Only a 64-bit hash of each row is remembered, to keep memory small;
    two different rows share one with a chance of about 1e-9 per million.
    """
    seen: set[int] = set()
    add = seen.add
    for rows in batches:
        size = len(seen)
        fresh = []
        for row, key in zip(rows, map(hash, rows), strict=True):
            if key not in seen:
                add(key)
                fresh.append(row)
        if repeats := len(rows) - (len(seen) - size):
            stats["dropped_duplicate"] += repeats
        stats["rows_without_context"] += sum(1 for row in fresh if not row[-2])
        yield fresh
    stats["rows_written"] = len(seen)


def _summary(
    inputs: list[str], output_path: Path, options: SampleOptions, stats: Counter[str]
) -> dict[str, Any]:
    dropped = {
        key[len("dropped_") :]: count for key, count in sorted(stats.items()) if key.startswith("dropped_")
    }
    return {
        "inputs": inputs,
        "output": str(output_path),
        "chats": stats["chats"],
        "messages_read": stats["messages_read"],
        "rows_written": stats["rows_written"],
        "rows_without_context": stats["rows_without_context"],
        "replies_with_parent_in_file": stats["replies_in_chain"],
        "replies_to_messages_not_in_file": stats["replies_to_unknown"],
        "dropped": dropped,
        "options": {
            "context_size": options.context_size,
            "max_gap_minutes": options.max_gap_s / 60,
            "max_length": options.max_chars,
            "anonymize": options.anonymize,
        },
    }


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    with atomic_text_file(path) as f:
        json.dump(data, f, ensure_ascii=False, indent=2)
        f.write("\n")


def _print_summary(summary: dict[str, Any]) -> None:
    print(
        f"chats: {summary['chats']}, messages read: {summary['messages_read']}, "
        f"rows written: {summary['rows_written']} "
        f"({summary['rows_without_context']} without context) -> {summary['output']}"
    )
    print(
        f"replies: {summary['replies_with_parent_in_file']} with their parent in the file, "
        f"{summary['replies_to_messages_not_in_file']} to messages outside it"
    )
    dropped = ", ".join(f"{reason} {count}" for reason, count in summary["dropped"].items())
    print(f"dropped: {dropped or 'nothing'}")


def helper_pays_off() -> bool:
    """Whether parsing in a helper process is the default here: with two or more CPUs.

    Measured reason (prepare_speed, 300k messages, 2 CPUs at load 4.6): the
    busiest process needs 3.4 s of CPU against 6.0 s in one process, so with a
    free CPU it runs at 2.2x the baseline's speed against 1.25x, the mode that
    comes closest to the 3x target; at load 5-10 its wall time was never
    worse (8.2 s against 8.3 s, 23.7 s against 33.4 s). The load average is
    no guide to choose at run time: it counts this program's own recent runs.
    """
    return _usable_cpus() >= 2


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    warn_if_slow_backend()
    options = SampleOptions(
        context_size=args.context_size,
        max_gap_s=args.max_gap_minutes * 60,
        max_chars=args.max_length,
        anonymize=args.anonymize,
    )
    try:
        if args.from_database is not None:
            query = CorpusQuery(args.from_database, tuple(sorted(set(args.chat_id or ()))), args.since)
            summary = prepare_database(query, args.output_path, options)
        else:
            summary = prepare(
                args.tg_history_path,
                args.output_path,
                options,
                progress=args.progress,
                helper_process=args.helper_process,
            )
    except (ExportError, DatabaseError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename or args.output_path}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: {args.output_path} was left as it was", file=sys.stderr)
        return 130
    _print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
