"""Fine-tune ruDialoGPT on the prepared CSVs with the Hugging Face Trainer.

One machine, one GPU or CPU:

    python -m finetuning.finetuning                                   # finetuning/config.yaml
    python -m finetuning.finetuning --config my.json --max_steps 100 --learning_rate 3e-5

Many GPUs (PyTorch DDP; ``finetuning/train.sh`` does this on Slurm):

    torchrun --nproc_per_node=8 -m finetuning.finetuning --output_dir outputs/run1

Every value comes from the config file (JSON or YAML; keys are the flags of
the three argument dataclasses below and of ``TrainingArguments``) and any
flag on the command line overrides it. The Hugging Face token is read from
``HF_TOKEN`` only. The output directory is a complete model that
``MODEL_NAME_OR_PATH=<output_dir> python -m model_server`` serves as is.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from dialogue.format import CONTEXT_SIZE
from dialogue.generation import MODEL_CARD_GENERATION
from finetuning.data import (
    ensure_pad_token,
    find_csv_files,
    load_dialogues,
    make_collator,
    split_dialogues,
    tokenize_dialogues,
)

logger = logging.getLogger("finetuning")

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default="tinkoff-ai/ruDialoGPT-medium",
        metadata={"help": "Base model: a hub id or a local directory."},
    )
    precision: str = field(
        default="auto",
        metadata={
            "help": "'auto': bf16 on GPUs that support it, else fp16 on GPUs, fp32 on CPU; "
            "'no': always fp32. An explicit --bf16 / --fp16 wins.",
            "choices": ["auto", "no"],
        },
    )


@dataclass
class DataArguments:
    data_dir: str = field(
        default="data_output",
        metadata={
            "help": "Directory of prepared CSVs (context_3,context_2,context_1,response); all are used."
        },
    )
    context_size: int = field(
        default=CONTEXT_SIZE,
        metadata={"help": "Context messages before the response; must match data prep and the bot."},
    )
    max_length: int = field(
        default=512,
        metadata={"help": "Max tokens per sample; longer samples lose their oldest context messages first."},
    )
    validation_split_percentage: float = field(
        default=5.0, metadata={"help": "Percent of the rows held out for validation (seeded split)."}
    )
    train_on_context: bool = field(
        default=False,
        metadata={"help": "Put the loss on the whole text, not only on the responses."},
    )
    dataset_cache_dir: str | None = field(
        default=None, metadata={"help": "Where datasets caches the parsed CSVs (default: HF_DATASETS_CACHE)."}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenisation."}
    )


ARGUMENT_CLASSES: tuple[type, ...] = (ModelArguments, DataArguments)


def load_config(path: str | Path) -> dict[str, Any]:
    """The config file as a flat dict; JSON, or YAML by extension."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        values = yaml.safe_load(text) or {}
    else:
        values = json.loads(text)
    if not isinstance(values, dict):
        raise ValueError(f"{path}: the config must be a mapping of flag names to values")
    # Keys starting with "_" are comments (JSON has no other kind).
    return {k: v for k, v in values.items() if not k.startswith("_")}


def _matches(value: Any, annotation: Any) -> bool:
    """Whether a config value has the type a dataclass field declares (ints pass as floats)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (list, tuple, dict):
        return isinstance(value, list if origin is tuple else origin)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return value in {m.value for m in annotation}
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def check_config_types(
    config: dict[str, Any], classes: Sequence[type], source: str | Path = "config"
) -> None:
    """Refuse unknown keys and values of the wrong type (a tuple or a string where a number belongs).

    The original project's config silently had tuples for numbers; here such a
    file stops the run before anything is loaded.
    """
    hints = {name: tp for cls in classes for name, tp in typing.get_type_hints(cls).items()}
    fields = {f.name for cls in classes for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise SystemExit(f"{source}: unknown keys {unknown}")
    wrong = [
        f"{key}={value!r} (expected {hints[key]})"
        for key, value in config.items()
        if not _matches(value, hints[key])
    ]
    if wrong:
        raise SystemExit(f"{source}: wrong value types: {'; '.join(wrong)}")


def auto_precision(argv: Sequence[str], config: dict[str, Any]) -> dict[str, bool]:
    """bf16 where the GPU has it, fp16 on older GPUs; nothing on CPU or when chosen explicitly."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--precision", default=config.get("precision", "auto"))
    # Flags as written (--use-cpu and --use_cpu alike): an explicit choice always wins.
    flags = {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
    explicit = bool({"bf16", "fp16"} & (flags | set(config))) or "use_cpu" in flags or config.get("use_cpu")
    if explicit or pre.parse_known_args(argv)[0].precision != "auto":
        return {}
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}


def parse_args(argv: Sequence[str] | None = None) -> tuple[ModelArguments, DataArguments, Any]:
    """Config file values as defaults, then command-line flags on top."""
    from transformers import HfArgumentParser, TrainingArguments

    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=str(DEFAULT_CONFIG))
    config_path = pre.parse_known_args(argv)[0].config
    config = load_config(config_path)

    classes = (*ARGUMENT_CLASSES, TrainingArguments)
    check_config_types(config, classes, config_path)
    if config.get("hub_token"):
        raise SystemExit(f"{config_path}: never put the hub token in a config; set HF_TOKEN")

    parser = HfArgumentParser(typing.cast(Any, classes))
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="JSON or YAML file of default flags.")
    parser.set_defaults(**config, **auto_precision(argv, config))
    model_args, data_args, training_args, _ = parser.parse_args_into_dataclasses(args=argv)
    if training_args.hub_token:
        raise SystemExit("--hub_token would end up in shell history and logs; set HF_TOKEN instead")
    if not training_args.output_dir:
        raise SystemExit("--output_dir is required")
    if training_args.push_to_hub:
        from huggingface_hub import get_token

        # Fail now, not after hours of training: pushing needs a token (HF_TOKEN or `hf auth login`).
        if get_token() is None:
            raise SystemExit("--push_to_hub needs a Hugging Face token: set HF_TOKEN")
    return model_args, data_args, training_args


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
    return str(value)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, Trainer, set_seed

    model_args, data_args, training_args = parse_args(argv)

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
        "world size %d, device %s, precision %s",
        training_args.world_size,
        training_args.device,
        "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32",
    )
    set_seed(training_args.seed)

    # Tokenizer: ruDialoGPT has no pad token; EOS pads, labels keep the real EOS.
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    ensure_pad_token(tokenizer)

    # Data: every CSV in data_dir, seeded row split, then samples in the shared dialogue format.
    # The main process tokenises first and the others read datasets' cache.
    with training_args.main_process_first(desc="reading and tokenising the CSVs"):
        dialogues = load_dialogues(find_csv_files(data_args.data_dir), cache_dir=data_args.dataset_cache_dir)
        train_rows, valid_rows = split_dialogues(
            dialogues, data_args.validation_split_percentage / 100, training_args.seed
        )
        train_set, valid_set = (
            tokenize_dialogues(
                rows,
                tokenizer,
                context_size=data_args.context_size,
                max_length=data_args.max_length,
                train_on_context=data_args.train_on_context,
                num_proc=data_args.preprocessing_num_workers,
            )
            for rows in (train_rows, valid_rows)
        )
    logger.info("train samples %d, validation samples %d", len(train_set), len(valid_set))

    # Model in fp32 weights (mixed precision casts on the fly), with the model card's generation defaults.
    model = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path, dtype=torch.float32)
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

    # Train (resumable), then save the best model as a complete, servable directory.
    train_result = trainer.train(resume_from_checkpoint=_resume_checkpoint(training_args))
    trainer.save_model()
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


if __name__ == "__main__":
    main()
