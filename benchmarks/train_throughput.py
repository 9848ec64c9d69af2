"""Training throughput: our pipeline against the original recipe, on the same CSV, in one run.

- original: every sample padded to 512 tokens, loss on every position (padding included),
  random batches - what the original script did.
- ours: ``finetuning.data`` samples (loss on responses, EOS taught), dynamic padding per batch,
  length-grouped batches - what ``python -m finetuning.train`` does.

Both train the same randomly initialised GPT-2 with the HF Trainer, same batch size, same steps,
taking turns step by step (the machine may be shared; both get the same share of it).
The number that matters is useful (non-padding) tokens per second; target ours >= 3x original.

    python -m benchmarks.train_throughput                          # small GPT-2, CPU, fp32
    python -m benchmarks.train_throughput --rudialogpt-shape       # GPU: 24 x 1024, 16 heads, bf16
    python -m benchmarks.train_throughput --csv data_output/chat.csv

Without ``--csv`` the data is a synthetic Telegram export (benchmarks/prepare_synthetic.py)
run through ``python -m finetuning.prepare``. The tokenizer is a byte-level BPE
trained on that CSV (8,000 tokens; ruDialoGPT's own has 50k, so its samples are somewhat
shorter still, which only favours dynamic padding further).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dialogue.format import training_text
from finetuning.data import (
    ensure_pad_token,
    load_dialogues,
    make_collator,
    tokenize_dialogues,
)

ROOT = Path(__file__).resolve().parents[1]

ORIGINAL_LENGTH = 512


def synthetic_csv(workdir: Path, n_messages: int) -> Path:
    from benchmarks.prepare_synthetic import write_synthetic_export

    export = write_synthetic_export(workdir / "export.json", n_messages) or workdir / "export.json"
    csv_path = workdir / "data" / "synthetic.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "finetuning.prepare", "--tg-history-path", str(export),
         "--output-path", str(csv_path)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    return csv_path


def train_tokenizer(rows: Any, vocab_size: int) -> Any:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    eos = "<|endoftext|>"
    texts = [m for ms in rows["messages"] for m in ms if m] + [r for r in rows["response"] if r]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, special_tokens=[eos], show_progress=False)
    tokenizer = GPT2TokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token=eos, eos_token=eos, unk_token=eos
    )
    ensure_pad_token(tokenizer)
    return tokenizer


def original_samples(rows: Any, tokenizer: Any) -> Any:
    """The original's recipe: fixed 512-token padding, labels = input_ids everywhere."""
    import datasets

    texts = [
        training_text(m, r, tokenizer.eos_token)
        for m, r in zip(rows["messages"], rows["response"], strict=True)
        if r.strip()
    ]
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=ORIGINAL_LENGTH)
    return datasets.Dataset.from_dict(
        {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": enc["input_ids"]}
    )


class Recipe:
    """One recipe's HF Trainer, stepped by hand so that the two recipes can take turns.

    Each step is the Trainer's own: its dataloader (sampler + collator), ``training_step``
    (forward, loss, backward through accelerate, mixed precision on GPU), optimizer and
    scheduler. Alternating steps gives both recipes the same share of a noisy, shared machine.
    """

    def __init__(
        self, name: str, model_config: Any, dataset: Any, collator: Any, args: Any, gpu: bool
    ) -> None:
        import torch
        from transformers import GPT2LMHeadModel, Trainer, TrainingArguments

        self.name, self.gpu = name, gpu
        torch.manual_seed(0)
        self.out = tempfile.TemporaryDirectory()
        training_args = TrainingArguments(
            output_dir=self.out.name,
            max_steps=args.warmup + args.steps,
            per_device_train_batch_size=args.batch_size,
            learning_rate=5e-5,
            train_sampling_strategy="group_by_length" if name == "ours" else "random",
            bf16=gpu,
            use_cpu=not gpu,
            report_to="none",
            dataloader_num_workers=0,
            dataloader_pin_memory=gpu,
            seed=0,
        )
        self.trainer = Trainer(
            model=GPT2LMHeadModel(model_config),
            args=training_args,
            train_dataset=dataset,
            data_collator=collator,
        )
        self.trainer.create_optimizer_and_scheduler(num_training_steps=training_args.max_steps)
        self.model, self.optimizer = self.trainer.accelerator.prepare(
            self.trainer.model, self.trainer.optimizer
        )
        self.model.train()
        self.trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train() otherwise
        self.batches = iter(self.trainer.get_train_dataloader())
        self.seconds = 0.0
        self.useful = self.padded = self.steps = 0

    def step(self, timed: bool) -> None:
        import torch

        start = time.perf_counter()
        batch = next(self.batches)
        self.trainer.training_step(self.model, batch)
        self.optimizer.step()
        self.trainer.lr_scheduler.step()
        self.optimizer.zero_grad()
        if self.gpu:
            torch.cuda.synchronize()
        if timed:
            self.seconds += time.perf_counter() - start
            self.useful += int(batch["attention_mask"].sum())
            self.padded += int(batch["attention_mask"].numel())
            self.steps += 1

    def result(self, batch_size: int) -> dict[str, Any]:
        self.out.cleanup()
        return {
            "recipe": self.name,
            "samples/s": self.steps * batch_size / self.seconds,
            "tokens/batch": self.padded / self.steps,
            "padding %": 100 * (1 - self.useful / self.padded),
            "useful tokens/s": self.useful / self.seconds,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", type=Path, help="a prepared CSV (default: synthetic chat)")
    parser.add_argument("--messages", type=int, default=6000, help="synthetic chat size")
    parser.add_argument(
        "--rudialogpt-shape", action="store_true", help="24 layers x 1024, 16 heads, bf16 on GPU"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per recipe")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads; 1 keeps a shared machine's noise out of small ops",
    )
    args = parser.parse_args()

    import torch
    from transformers import GPT2Config

    gpu = torch.cuda.is_available()
    if not gpu:
        torch.set_num_threads(args.threads)
    if args.rudialogpt_shape and not gpu:
        print("note: --rudialogpt-shape without a GPU runs in fp32 on CPU and is very slow")
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = args.csv or synthetic_csv(Path(tmp), args.messages)
        rows = load_dialogues([csv_path], cache_dir=str(Path(tmp) / "cache"))
        tokenizer = train_tokenizer(rows, vocab_size=8000)
        shape: dict[str, Any] = (
            {"n_layer": 24, "n_embd": 1024, "n_head": 16, "vocab_size": 50261}
            if args.rudialogpt_shape
            else {"n_layer": 4, "n_embd": 256, "n_head": 4, "vocab_size": len(tokenizer)}
        )
        model_config = GPT2Config(
            n_positions=ORIGINAL_LENGTH,
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **shape,
        )
        ours = tokenize_dialogues(rows, tokenizer, max_length=ORIGINAL_LENGTH)
        original = original_samples(rows, tokenizer)
        device = f"GPU bf16 {torch.cuda.get_device_name()}" if gpu else "CPU fp32"
        print(
            f"data: {csv_path.name if args.csv else 'synthetic chat'}, {len(ours)} samples, "
            f"mean {sum(ours['length']) / len(ours):.0f} tokens, max {max(ours['length'])}; "
            f"model: GPT-2 {shape['n_layer']} x {shape['n_embd']}, {shape['n_head']} heads, "
            f"vocab {shape['vocab_size']}; {device}{'' if gpu else f' {args.threads} thread(s)'}; "
            f"batch {args.batch_size}, {args.steps} timed steps after {args.warmup}"
        )
        from transformers import default_data_collator

        recipes = [
            Recipe("original", model_config, original, default_data_collator, args, gpu),
            Recipe("ours", model_config, ours, make_collator(tokenizer, 8 if gpu else None), args, gpu),
        ]
        for i in range(args.warmup + args.steps):
            for recipe in recipes:
                recipe.step(timed=i >= args.warmup)
        results = [r.result(args.batch_size) for r in recipes]

    print()
    print("| recipe | samples/s | tokens/batch | padding % | useful tokens/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['recipe']} | {r['samples/s']:.1f} | {r['tokens/batch']:.0f} | {r['padding %']:.1f} | "
            f"{r['useful tokens/s']:.0f} |"
        )
    ratio = results[1]["useful tokens/s"] / results[0]["useful tokens/s"]
    print(f"\nuseful tokens/s, ours / original: {ratio:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
