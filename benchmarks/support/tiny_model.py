"""A tiny GPT-2 with its own tokenizer, built offline for tests and benchmarks.

The tokenizer is a byte-level BPE trained on ``corpus.txt`` beside this file;
like ruDialoGPT it has an EOS token and no pad token. Everything is saved with
``save_pretrained`` so tests load it through the product's real loading code.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().with_name("corpus.txt")
EOS = "<|endoftext|>"


def build_tokenizer(vocab_size: int = 800):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CORPUS.read_text(encoding="utf-8").splitlines(),
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=[EOS],
        show_progress=False,
    )
    return GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOS, eos_token=EOS, unk_token=EOS)


def build_tiny_model(
    out_dir: Path,
    *,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 2,
    n_positions: int = 256,
    seed: int = 0,
) -> Path:
    """Random-weight GPT-2 saved with its tokenizer in ``out_dir``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
