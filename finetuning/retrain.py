"""Retrain on the bot's corpus and promote the result only when it is better.

    python -m finetuning.retrain --from-database DATABASE_URL --models_dir /srv/models \\
        [--chat-id ID ...] [--since YYYY-MM-DD] [--output_dir outputs/retrain/RUN] \\
        [--model_name_or_path BASE] [--push_to_hub --hub_model_id USER/NAME] [TRAINING FLAGS...]

1. The corpus (table corpus_message) is prepared as ``prepare --from-database``
   does, with its newest slice by date held out (promotion.py): by default
   the newest 10% of the messages, at least 200 while that leaves half.
2. The champion, ``MODELS_DIR/current`` (or ``--model_name_or_path`` before
   there is one), is fine-tuned further on the rest: finetuning.train in
   this process, or ``--launcher 'bash finetuning/train.sh'`` (many GPUs).
   Every flag this command does not know goes to training (``--max_steps``,
   ``--config``, ...).
3. Champion and challenger are scored on the held-out rows by
   finetuning.evaluate: response perplexity, and the verdict whether the
   model uses its context.
4. The challenger is promoted only if its perplexity there is lower AND it
   uses its context: copied to ``MODELS_DIR/<UTC timestamp>`` with
   ``current`` re-pointed in one rename, or with ``--push_to_hub`` pushed as
   a new revision of ``--hub_model_id``. A refused challenger stays in the
   run's directory for inspection and is never published.

The run's directory gets ``promotion.json`` (both perplexities, the row
counts, the verdict, the decision and why); the last line printed is the
decision. A refusal exits 0: it is an answer, not a failure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from finetuning.prepare.database import CorpusQuery, DatabaseError
from finetuning.prepare.flags import positive_int, utc_day
from finetuning.prepare.records import SampleOptions
from finetuning.promotion import CURRENT, champion_dir, decide, publish, push, split_corpus, timestamp

logger = logging.getLogger("finetuning.retrain")


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return number


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise SystemExit(message)  # run_command prints it as one line


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = _OneLineParser(
        prog="python -m finetuning.retrain",
        description="Fine-tune the current model on the bot's corpus; promote it only if it does better.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--from-database",
        metavar="DATABASE_URL",
        default=os.environ.get("DATABASE_URL"),
        help="the bot's database (default: $DATABASE_URL, which keeps the password off the command line)",
    )
    parser.add_argument("--chat-id", type=int, action="append", help="only this chat (repeatable)")
    parser.add_argument("--since", type=utc_day, help="only messages sent from this day on (UTC)")
    parser.add_argument("--models_dir", type=Path, help="published models; the champion is its 'current'")
    parser.add_argument("--model_name_or_path", help="the champion while MODELS_DIR/current does not exist")
    parser.add_argument(
        "--output_dir", type=Path, help="this run's directory (default outputs/retrain/<UTC>)"
    )
    parser.add_argument("--heldout-fraction", type=_fraction, default=0.1)
    parser.add_argument("--min-heldout-messages", type=positive_int, default=200)
    parser.add_argument("--launcher", help="run training as this command, e.g. 'bash finetuning/train.sh'")
    parser.add_argument("--push_to_hub", action="store_true", help="publish to the hub instead of models_dir")
    parser.add_argument("--hub_model_id", help="with --push_to_hub: the repository, USER/NAME")
    args, training_flags = parser.parse_known_args(argv)
    if not args.from_database:
        parser.error("--from-database DATABASE_URL (or DATABASE_URL in the environment) is required")
    if args.push_to_hub:
        from huggingface_hub import get_token

        if not args.hub_model_id:
            parser.error("--push_to_hub needs --hub_model_id USER/NAME")
        if get_token() is None:
            parser.error("--push_to_hub needs a Hugging Face token: set HF_TOKEN")
    elif args.models_dir is None:
        parser.error("--models_dir is required (or --push_to_hub)")
    owned = {"--output_dir", "--data_dir", "--data_file", "--hub_token"}
    taken = [flag for flag in training_flags if flag.split("=")[0] in owned]
    if taken:
        parser.error(f"{taken[0]} is this command's to set (the run's directory: --output_dir)")
    return args, training_flags


def train(champion: str, train_csv: Path, out: Path, flags: list[str], launcher: str | None) -> None:
    """The champion fine-tuned further on ``train_csv`` into ``out``."""
    argv = ["--model_name_or_path", champion, "--data_file", str(train_csv), "--output_dir", str(out)]
    if "--dataset_cache_dir" not in flags:
        argv += ["--dataset_cache_dir", str(out.parent / "cache")]
    argv += flags
    if launcher:
        done = subprocess.run([*shlex.split(launcher), *argv], check=False)
        if done.returncode != 0:
            raise SystemExit(f"training failed ({launcher} exited with {done.returncode})")
        return
    from finetuning.train import main as train_main

    train_main(argv)


def score(model: str, heldout_csv: Path, out: Path) -> dict[str, Any]:
    from finetuning.arguments import DataFiles
    from finetuning.evaluate import EvalArguments, evaluate

    args = EvalArguments(model_name_or_path=model, output_dir=str(out))
    return evaluate(args, DataFiles(data_file=[str(heldout_csv)], dataset_cache_dir=str(out / "cache")))


def _model_facts(results: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": results["model"],
        "perplexity": results["conditions"]["true_context"]["perplexity"],
        "shuffled_context_perplexity": results["conditions"]["shuffled_context"]["perplexity"],
        "verdict": results["verdict"]["line"],
        "uses_context": results["verdict"]["uses_context"],
    }


def run(args: argparse.Namespace, training_flags: list[str]) -> dict[str, Any]:
    champion = champion_dir(args.models_dir, args.model_name_or_path)
    run_dir: Path = args.output_dir or Path("outputs", "retrain", timestamp())
    query = CorpusQuery(args.from_database, tuple(sorted(set(args.chat_id or ()))), args.since)
    split = split_corpus(
        query, run_dir / "data", SampleOptions(), args.heldout_fraction, args.min_heldout_messages
    )
    logger.info("%s", split.counts())
    challenger = run_dir / "challenger"
    train(champion, split.train_csv, challenger, training_flags, args.launcher)
    old = score(champion, split.heldout_csv, run_dir / "eval" / "champion")
    new = score(str(challenger), split.heldout_csv, run_dir / "eval" / "challenger")
    promote, reason = decide(old, new)
    report: dict[str, Any] = {
        "corpus": query.shown(),
        "rows": {**split.counts(), "heldout_rows_scored": new["samples"]},
        "champion": _model_facts(old),
        "challenger": _model_facts(new),
        "decision": "promoted" if promote else "refused",
        "reason": reason,
        "published": None,
    }
    if promote and args.push_to_hub:
        message = f"retrained: perplexity {report['champion']['perplexity']:.3f} -> "
        message += f"{report['challenger']['perplexity']:.3f} on the newest corpus rows"
        revision = push(challenger, args.hub_model_id, message)
        report["published"] = f"{args.hub_model_id}@{revision}"
    elif promote:
        target = publish(challenger, args.models_dir)
        report["published"] = str(target)
        report["current"] = str(args.models_dir / CURRENT)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "promotion.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    report["line"] = _decision_line(report, challenger)
    return report


def _decision_line(report: dict[str, Any], challenger: Path) -> str:
    if report["decision"] == "promoted":
        where = report.get("current")
        published = f"{where} -> {Path(report['published']).name}" if where else report["published"]
        return f"promoted: {report['reason']}; published as {published}"
    return f"refused: {report['reason']}; the challenger stays in {challenger}, unpublished"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args, training_flags = parse_args(sys.argv[1:] if argv is None else argv)
    report = run(args, training_flags)
    print(report["line"], flush=True)
    return report


def command_line(argv: Sequence[str] | None = None) -> int:
    from finetuning.arguments import run_command

    try:
        return run_command("retrain", main, argv)
    except DatabaseError as error:
        print(f"retrain: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(command_line())
