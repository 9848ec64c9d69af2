"""CSV rows → training samples: the shared format, labels on responses, truncation, padding."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogue.format import CONTEXT_SIZE, training_prompt, training_text
from finetuning.data import (
    IGNORE_INDEX,
    DataError,
    encode_dialogue,
    ensure_pad_token,
    load_dialogues,
    make_collator,
    split_dialogues,
    tokenize_dialogues,
)
from tests.finetuning.train_fixtures import write_csv

EOS = "<|endoftext|>"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ensure_pad_token(tok)
    return tok


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_sample_is_the_shared_training_text_with_loss_on_response_and_eos(tokenizer) -> None:
    messages = ["привет", "привет, как дела?", "хорошо, а у тебя?"]
    sample = encode_dialogue(tokenizer, messages, "отлично,\n спасибо")
    assert sample is not None
    text = training_text(messages, "отлично, спасибо", EOS)
    # Token for token what tokenising the whole text gives, and what the server's prompt starts with.
    assert sample.input_ids == ids(tokenizer, text)
    n_prompt = len(ids(tokenizer, training_prompt(messages)))
    assert sample.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert sample.labels[n_prompt:] == sample.input_ids[n_prompt:]
    assert tokenizer.decode(sample.labels[n_prompt:]) == " отлично, спасибо" + EOS
    assert sample.labels[-1] == tokenizer.eos_token_id


def test_train_on_context_puts_the_loss_on_every_token(tokenizer) -> None:
    sample = encode_dialogue(tokenizer, ["привет"], "пока", train_on_context=True)
    assert sample is not None and sample.labels == sample.input_ids


def test_missing_context_is_used_as_far_as_it_goes(tokenizer) -> None:
    sample = encode_dialogue(tokenizer, ["", "", "что делаешь?"], "читаю книгу")
    assert sample is not None
    assert tokenizer.decode(sample.input_ids) == training_text(["что делаешь?"], "читаю книгу", EOS)
    assert encode_dialogue(tokenizer, ["a", "b"], " \n ") is None  # nothing to learn


def test_over_long_samples_lose_the_oldest_context_first_never_the_response(tokenizer) -> None:
    oldest, middle, newest = "кот " * 40, "как дела?", "что делаешь?"
    response = "читаю книгу про космос"
    full = len(ids(tokenizer, training_text([oldest, middle, newest], response, EOS)))
    without_oldest = len(ids(tokenizer, training_text([middle, newest], response, EOS)))
    sample = encode_dialogue(tokenizer, [oldest, middle, newest], response, max_length=without_oldest)
    assert without_oldest < full
    assert sample is not None and sample.dropped_context == 1
    assert tokenizer.decode(sample.input_ids) == training_text([middle, newest], response, EOS)
    # Not even the newest message fits next to the response: the row is dropped, not cut.
    only_response = len(ids(tokenizer, training_text([], response, EOS)))
    assert encode_dialogue(tokenizer, [middle, newest], response, max_length=only_response + 1) is None


def test_context_beyond_context_size_is_not_used(tokenizer) -> None:
    messages = [f"сообщение {i}" for i in range(CONTEXT_SIZE + 2)]
    sample = encode_dialogue(tokenizer, messages, "ответ")
    assert sample is not None
    assert tokenizer.decode(sample.input_ids) == training_text(messages[-CONTEXT_SIZE:], "ответ", EOS)


def test_batches_are_padded_to_their_longest_sample_and_padding_is_never_a_label(tokenizer) -> None:
    short = encode_dialogue(tokenizer, ["привет"], "пока")
    long = encode_dialogue(tokenizer, ["что делаешь?", "читаю", "интересно?"], "очень, там про звёзды")
    assert short is not None and long is not None
    batch = make_collator(tokenizer)(
        [
            {"input_ids": s.input_ids, "labels": s.labels, "attention_mask": [1] * len(s.input_ids)}
            for s in (short, long)
        ]
    )
    width = len(long.input_ids)
    assert batch["input_ids"].shape == (2, width)  # not padded to a fixed 512
    n = len(short.input_ids)
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (width - n)
    assert batch["labels"][0].tolist() == short.labels + [IGNORE_INDEX] * (width - n)
    # EOS doubles as the pad token, yet the response's EOS stays a label.
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    assert batch["labels"][0, n - 1].item() == tokenizer.eos_token_id


def test_csv_cells_are_text_and_incomplete_rows_are_kept(tmp_path: Path, tokenizer) -> None:
    csv_path = write_csv(
        tmp_path / "data" / "chat.csv",
        [
            ["", "", "42", "0"],  # numbers stay text
            ["привет", "", "как дела", "хорошо"],
            ["a", "b", "c", ""],  # no response: dropped
        ],
    )
    rows = load_dialogues([csv_path], cache_dir=str(tmp_path / "cache"))
    assert rows["messages"] == [["", "", "42"], ["привет", "", "как дела"], ["a", "b", "c"]]
    assert rows["response"] == ["0", "хорошо", ""]
    samples = tokenize_dialogues(rows, tokenizer)
    assert len(samples) == 2
    assert tokenizer.decode(samples[0]["input_ids"]) == training_text(["42"], "0", EOS)
    assert samples[1]["length"] == len(samples[1]["input_ids"])


def test_a_csv_without_a_response_column_is_refused_by_name(tmp_path: Path) -> None:
    bad = write_csv(tmp_path / "bad.csv", [["a", "b"]], header=["context_1", "answer"])
    with pytest.raises(DataError, match="bad.csv.*response"):
        load_dialogues([bad], cache_dir=str(tmp_path / "cache"))


def test_the_split_is_reproducible_from_the_seed(tmp_path: Path) -> None:
    rows = [["", "", f"вопрос {i}", f"ответ {i}"] for i in range(40)]
    dialogues = load_dialogues([write_csv(tmp_path / "d.csv", rows)], cache_dir=str(tmp_path / "cache"))
    first = split_dialogues(dialogues, 0.25, seed=1)
    again = split_dialogues(dialogues, 0.25, seed=1)
    other = split_dialogues(dialogues, 0.25, seed=2)
    assert first[1]["response"] == again[1]["response"]
    assert len(first[1]) == 10 and len(first[0]) == 30
    assert not set(first[0]["response"]) & set(first[1]["response"])
    assert first[1]["response"] != other[1]["response"]


def test_a_csv_saved_with_a_byte_order_mark_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text("context_3,context_2,context_1,response\nа,б,в,г\n", encoding="utf-8-sig")
    rows = load_dialogues([path], cache_dir=str(tmp_path / "cache"))
    assert rows[0] == {"messages": ["а", "б", "в"], "response": "г"}
