"""One engine's own batched call, without the server: what the server's throughput is held against."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


class Bare:
    """One engine's own batched call in this process, with the server's settings and prompts."""

    def __init__(
        self,
        engine: str,
        compute_type: str,
        model_dir: Path,
        mode: dict[str, Any],
        new_tokens: int,
        context: list[dict[str, str]],
    ):
        from dialogue.format import Turn
        from model_server.loading import load_engine
        from model_server.settings import GenerationSettings, Settings

        gen = GenerationSettings(**mode, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
        settings = Settings(
            model_name_or_path=str(model_dir), engine=engine, engine_compute_type=compute_type
        )
        self.engine: Any = load_engine(settings.model_copy(update={"generation": gen}))
        self.mode, self.new_tokens, self.kind = mode, new_tokens, engine
        self.context = [Turn(t["role"], t["text"]) for t in context]  # type: ignore[arg-type]
        if engine == "transformers":  # the bare call: no stop strings (no answer stops early anyway)
            self.config = self.engine.generation_config
            self.config.stop_strings = self.config.max_time = None

    def seconds(self, queries: list[str]) -> float:
        import torch

        prompts = [self.engine.encode(self.context, q) for q in queries]
        started = time.perf_counter()
        if self.kind == "transformers":
            width = max(len(p) for p in prompts)
            pad = self.engine.pad_token_id
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
            with torch.inference_mode():
                out = self.engine.model.generate(
                    input_ids=ids, attention_mask=mask, generation_config=self.config
                )
            assert out.shape[1] - width == self.new_tokens
        else:
            tokens = [self.engine.tokenizer.convert_ids_to_tokens(p) for p in prompts]
            results = self.engine.generator.generate_batch(
                tokens, max_length=self.new_tokens, include_prompt_in_result=False, **self.engine.options
            )
            assert len(results[0].sequences_ids[0]) >= self.new_tokens
        return time.perf_counter() - started
