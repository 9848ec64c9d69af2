"""Fine-tune ruDialoGPT on the prepared CSVs with the Hugging Face Trainer.

One machine, one GPU or CPU:

    python -m finetuning.train                                        # finetuning/config.yaml
    python -m finetuning.train --config my.json --max_steps 100 --learning_rate 3e-5

Many GPUs (PyTorch DDP; ``finetuning/train.sh`` does this on Slurm):

    torchrun --nproc_per_node=8 -m finetuning.train --output_dir outputs/run1

Every value comes from the config file (JSON or YAML; keys are the flags of
the argument dataclasses in ``finetuning/arguments.py`` and of
``TrainingArguments``) and any flag on the command line overrides it. The
Hugging Face token is read from ``HF_TOKEN`` only. The output directory is a
complete model that ``MODEL_NAME_OR_PATH=<output_dir> python -m model_server``
serves as is; it carries ``dialogue.json`` (the context size it was trained
with) and the exact validation rows, which ``python -m finetuning.evaluate``
scores.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dialogue.generation import MODEL_CARD_GENERATION
from dialogue.model_facts import DialogueFacts
from dialogue.model_source import loading_error, resolve_model_source
from finetuning.arguments import parse_args, run_command
from finetuning.data import (
    data_files,
    ensure_pad_token,
    fit_max_length,
    load_dialogues,
    make_collator,
    split_dialogues,
    tokenize_dialogues,
)
from finetuning.validation_rows import save_validation_rows

logger = logging.getLogger("finetuning")

# Files whose presence means output_dir already holds a model (or a run's checkpoints).
_MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "trainer_state.json")


def _resume_checkpoint(training_args: Any) -> str | None:
    """``--resume_from_checkpoint PATH``, or ``true``/``last`` for the newest one in output_dir."""
    from transformers.trainer_utils import get_last_checkpoint

    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() in ("", "false", "no"):
        return None
    if str(value).lower() in ("true", "last", "yes"):
        last = (
            get_last_checkpoint(training_args.output_dir) if Path(training_args.output_dir).is_dir() else None
        )
        if last is None:
            raise SystemExit(f"no checkpoint to resume from in {training_args.output_dir}")
        return str(last)
    if not Path(value).is_dir():
        raise SystemExit(f"--resume_from_checkpoint {value}: directory does not exist")
    return str(value)


def _stale_checkpoints(output_dir: str, overwrite: bool, resuming: bool) -> list[Path]:
    """Refuse to write over an earlier run unless asked; with --overwrite_output_dir, its checkpoints.

    Otherwise a second run silently replaces the model and mixes its checkpoints
    with the first run's (and ``resume ... last`` would pick the wrong one).
    Every rank checks alike, so all of them stop together.
    """
    out = Path(output_dir)
    if resuming or not out.is_dir():
        return []
    checkpoints = sorted(out.glob("checkpoint-*"))
    if not checkpoints and not any((out / name).exists() for name in _MODEL_FILES):
        return []
    if not overwrite:
        raise SystemExit(
            f"--output_dir {out} already holds a model; pass --overwrite_output_dir to replace it, "
            "--resume_from_checkpoint last to continue it, or choose another --output_dir"
        )
    return checkpoints


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args = parse_args(argv)
    import torch
    import transformers
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoTokenizer,
        GenerationConfig,
        Trainer,
        set_seed,
    )

    resume = _resume_checkpoint(training_args)
    # Checked before anything loads: a typo in a path or a missing data dir costs seconds.
    source = resolve_model_source(model_args.model_name_or_path, "--model_name_or_path")
    csv_files = data_files(data_args.data_dir, data_args.data_file)
    stale = _stale_checkpoints(training_args.output_dir, model_args.overwrite_output_dir, resume is not None)
    with training_args.main_process_first(desc="deleting the replaced run's checkpoints"):
        for checkpoint in stale:
            shutil.rmtree(checkpoint, ignore_errors=True)  # the other ranks find them gone

    # Logging: INFO on the main process, warnings only on the other ranks.
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    # Ours at INFO on the logging process; transformers' own level follows --log_level / --log_level_replica.
    ours = logging.INFO if training_args.should_log else logging.WARNING
    logger.setLevel(ours)
    logging.getLogger("finetuning.data").setLevel(ours)
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    logger.info(
        "world size %d, device %s, precision %s, writing to %s",
        training_args.world_size,
        training_args.device,
        "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32",
        training_args.output_dir,
    )
    set_seed(training_args.seed)

    # Tokenizer: ruDialoGPT has no pad token; EOS pads, labels keep the real EOS.
    # max_length never exceeds the model's positions (past them GPT-2 fails mid-run).
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        max_length = fit_max_length(data_args.max_length, AutoConfig.from_pretrained(source))
    except (OSError, ValueError) as error:
        raise loading_error(model_args.model_name_or_path, "--model_name_or_path", error) from error
    ensure_pad_token(tokenizer)

    # Data: the CSVs, seeded row split, then samples in the shared dialogue format.
    # The main process tokenises first and the others read datasets' cache.
    with training_args.main_process_first(desc="reading and tokenising the CSVs"):
        dialogues = load_dialogues(csv_files, cache_dir=data_args.dataset_cache_dir)
        train_rows, valid_rows = split_dialogues(
            dialogues, data_args.validation_split_percentage / 100, training_args.seed
        )
        train_set, valid_set = (
            tokenize_dialogues(
                rows,
                tokenizer,
                context_size=data_args.context_size,
                max_length=max_length,
                train_on_context=data_args.train_on_context,
                num_proc=data_args.preprocessing_num_workers,
            )
            for rows in (train_rows, valid_rows)
        )
    logger.info("train samples %d, validation samples %d", len(train_set), len(valid_set))

    # Model in fp32 weights (mixed precision casts on the fly), with the model card's generation defaults.
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config = GenerationConfig(
        **MODEL_CARD_GENERATION,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )

    half = training_args.bf16 or training_args.fp16
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=valid_set,
        data_collator=make_collator(tokenizer, pad_to_multiple_of=8 if half else None),
        processing_class=tokenizer,
    )

    # Train (resumable), then save the best model as a complete, servable directory:
    # weights, tokenizer, generation_config.json, and dialogue.json beside it with the context
    # size the samples were built with, so the server need not be told.
    train_result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()
    if trainer.is_world_process_zero():
        DialogueFacts(context_size=data_args.context_size).save(training_args.output_dir)
        save_validation_rows(valid_rows, training_args.output_dir)
    metrics = dict(train_result.metrics)
    metrics["train_samples"] = len(train_set)
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()

    # Validation loss of the saved model; perplexity is over response tokens only (unless train_on_context).
    eval_metrics = trainer.evaluate()
    eval_metrics["eval_samples"] = len(valid_set)
    eval_metrics["perplexity"] = (
        math.exp(eval_metrics["eval_loss"]) if eval_metrics["eval_loss"] < 50 else math.inf
    )
    trainer.log_metrics("eval", eval_metrics)
    trainer.save_metrics("eval", eval_metrics)

    if trainer.is_world_process_zero():
        from finetuning.plots import plot_loss

        png = plot_loss(trainer.state.log_history, Path(training_args.output_dir) / "loss.png")
        logger.info("loss curves: %s", png)

    if training_args.push_to_hub:
        # The token comes from HF_TOKEN (huggingface_hub reads it); never from flags or files.
        trainer.push_to_hub(commit_message="Fine-tuned on prepared Telegram dialogues")
    return {**metrics, **eval_metrics}


def _leave_process_group() -> None:
    """Under torchrun, leave the process group before the interpreter exits.

    PyTorch asks for this; left to teardown, a DDP worker once died with
    "terminate called without an active exception" (exit -6) after the model
    was saved, and torchrun failed the whole run.
    """
    if "torch" not in sys.modules:  # --help and refused flags end before torch is imported
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def command_line() -> int:
    """``python -m finetuning.train``: the exit status of a run from ``sys.argv``."""
    try:
        return run_command("finetuning", main, None)
    finally:
        _leave_process_group()


if __name__ == "__main__":
    sys.exit(command_line())
