from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogue.format import (
    CONTEXT_SIZE,
    FIRST_SPEAKER,
    SECOND_SPEAKER,
    Turn,
    cut_answer,
    merge_consecutive,
    normalize,
    serving_prompt,
    training_text,
)

EOS = "<|endoftext|>"
# Russian, Latin, digits, punctuation, "@" runs and every kind of whitespace.
message_text = st.text(
    alphabet=st.sampled_from(list("приветкакделаЁёЪ abcXYZ019 .,!?@@@\n\t\u00a0-«»")),
    min_size=0,
    max_size=40,
)
non_empty_text = message_text.filter(lambda t: normalize(t) != "")


def test_example_from_the_architecture() -> None:
    text = training_text(["m1", "m2", "m3"], "r", EOS)
    assert text == f"{FIRST_SPEAKER} m1 {SECOND_SPEAKER} m2 {FIRST_SPEAKER} m3 {SECOND_SPEAKER} r{EOS}"


def test_tags_alternate_backwards_from_the_response() -> None:
    expected = f"{SECOND_SPEAKER} a {FIRST_SPEAKER} b {SECOND_SPEAKER} r{EOS}"
    assert training_text(["a", "b"], "r", EOS) == expected
    assert serving_prompt([], "q") == f"{FIRST_SPEAKER} q {SECOND_SPEAKER}"


def test_missing_context_cells_are_skipped_and_context_is_capped() -> None:
    assert training_text(["", "", "q"], "r", EOS) == f"{FIRST_SPEAKER} q {SECOND_SPEAKER} r{EOS}"
    five = training_text(["1", "2", "3", "4", "5"], "r", EOS)
    assert five.startswith(f"{FIRST_SPEAKER} 3 ")
    assert five.count("@@") == 2 * (CONTEXT_SIZE + 1)


def test_normalisation_joins_lines_and_spaces() -> None:
    assert normalize("  привет\n\nкак \t дела  ") == "привет как дела"


def test_same_speaker_neighbours_are_merged() -> None:
    context = [Turn("user", "раз"), Turn("user", "два"), Turn("bot", "ок")]
    prompt = serving_prompt(context, "три")
    assert prompt == f"{FIRST_SPEAKER} раз два {SECOND_SPEAKER} ок {FIRST_SPEAKER} три {SECOND_SPEAKER}"
    assert merge_consecutive([("a", "x"), ("a", " "), ("b", "y"), ("a", "z"), ("a", "w")]) == [
        ("a", "x"),
        ("b", "y"),
        ("a", "z w"),
    ]


def test_empty_query_and_response_are_refused() -> None:
    with pytest.raises(ValueError):
        serving_prompt([], " \n ")
    with pytest.raises(ValueError):
        training_text(["a"], " \t ", EOS)


def _alternating(texts: list[str]) -> list[Turn]:
    """Turns whose roles alternate backwards from a final user message."""
    n = len(texts)
    return [Turn("user" if (n - i) % 2 == 1 else "bot", t) for i, t in enumerate(texts)]


@given(messages=st.lists(non_empty_text, min_size=1, max_size=6), response=non_empty_text)
def test_training_text_is_serving_prompt_plus_response(messages: list[str], response: str) -> None:
    *context, query = messages
    prompt = serving_prompt(_alternating(messages)[:-1], query)
    assert training_text(messages, response, EOS) == prompt + " " + normalize(response) + EOS
    assert prompt.endswith(SECOND_SPEAKER)


@given(messages=st.lists(non_empty_text, min_size=1, max_size=6))
def test_user_text_cannot_forge_a_speaker_tag(messages: list[str]) -> None:
    forged = [m + f" {SECOND_SPEAKER} {FIRST_SPEAKER}" for m in messages]
    prompt = serving_prompt(_alternating(forged)[:-1], forged[-1])
    kept = min(len(messages), CONTEXT_SIZE)
    assert prompt.count("@@") == 2 * (kept + 1)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(
    messages=st.lists(non_empty_text, min_size=1, max_size=4),
    answer=non_empty_text,
    tail=message_text,
)
def test_tokens_agree_and_the_cut_sees_only_the_answer(
    tiny_tokenizer, messages: list[str], answer: str, tail: str
) -> None:
    tok = tiny_tokenizer
    prompt = serving_prompt(_alternating(messages)[:-1], messages[-1])
    full = training_text(messages, answer, tok.eos_token)
    prompt_ids = tok(prompt)["input_ids"]
    full_ids = tok(full)["input_ids"]
    # Loss masking and serving rely on the prompt being a token prefix.
    assert full_ids[: len(prompt_ids)] == prompt_ids
    assert full_ids[-1] == tok.eos_token_id

    # The model answers, then starts the next speaker's turn.
    generated = full_ids[len(prompt_ids) : -1] + tok(f" {FIRST_SPEAKER} {tail}")["input_ids"]
    assert cut_answer(tok.decode(generated)) == normalize(answer)


def test_the_cut_keeps_one_printable_line_before_the_tag() -> None:
    assert cut_answer("") == ""
    assert cut_answer(f"{FIRST_SPEAKER} ещё") == ""
    assert cut_answer(" \x11\ufffd ") == ""
    assert cut_answer(f" при\x03вет\ufffd,\n  как\x1f дела {SECOND_SPEAKER} ну") == "привет, как дела"


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=30) | message_text)
def test_normalize_fast_path_agrees_with_the_regexes(text: str) -> None:
    from dialogue.format import _AT_RUN, _WHITESPACE

    assert normalize(text) == _WHITESPACE.sub(" ", _AT_RUN.sub("@", text)).strip()
