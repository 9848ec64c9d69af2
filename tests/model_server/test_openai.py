"""The OpenAI-compatible API, with the official ``openai`` package as the client, on both engines."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from tests.model_server.conftest import ENGINES, LiveServer, serve
from tests.model_server.test_api import body, gated, metric, wait_for


def client(live: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0, timeout=60)


def model_id(live: LiveServer) -> str:
    return live.service.settings.model_name_or_path


def test_models_lists_the_served_model(shared_server: LiveServer) -> None:
    assert [m.id for m in client(shared_server).models.list()] == [model_id(shared_server)]


def test_a_chat_completion_is_the_answer_of_the_same_dialogue(shared_server: LiveServer) -> None:
    context = [{"role": "user", "text": "привет, как дела?"}, {"role": "bot", "text": "хорошо"}]
    expected = httpx.post(f"{shared_server.url}/answer", json=body("что делаешь?") | {"context": context})
    completion = client(shared_server).chat.completions.create(
        model=model_id(shared_server),
        messages=[
            {"role": "system", "content": "ignored: the model was trained without instructions"},
            {"role": "user", "content": "привет, как дела?"},
            {"role": "assistant", "content": "хорошо"},
            {"role": "user", "content": "что делаешь?"},
        ],
    )
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == expected.json()["answer"] != ""
    assert choice.finish_reason in ("stop", "length")


def test_streaming_sends_the_answer_piece_by_piece_then_done(shared_server: LiveServer) -> None:
    messages = [{"role": "user", "content": "привет, как дела?"}]
    plain = client(shared_server).chat.completions.create(model=model_id(shared_server), messages=messages)
    stream = client(shared_server).chat.completions.create(
        model=model_id(shared_server), messages=messages, stream=True
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(pieces) > 1, "tokens arrive as they are generated, not in one piece"
    assert "".join(pieces) == plain.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == plain.choices[0].finish_reason
    with httpx.stream("POST", f"{shared_server.url}/v1/chat/completions", json={
        "model": model_id(shared_server), "messages": messages, "stream": True,
    }) as raw:  # fmt: skip
        assert raw.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in raw.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"


def test_max_tokens_cuts_the_answer(shared_server: LiveServer) -> None:
    messages = [{"role": "user", "content": "привет, как дела?"}]
    sdk = client(shared_server)
    full = sdk.chat.completions.create(model=model_id(shared_server), messages=messages)
    short = sdk.chat.completions.create(model=model_id(shared_server), messages=messages, max_tokens=8)
    assert short.choices[0].finish_reason == "length"
    text = short.choices[0].message.content or ""
    assert text and len(text) < len(full.choices[0].message.content or "")
    assert (full.choices[0].message.content or "").startswith(text)


def test_stop_seed_and_temperature_are_honoured(shared_server: LiveServer) -> None:
    messages = [{"role": "user", "content": "привет, как дела?"}]
    sdk = client(shared_server)
    full = sdk.chat.completions.create(model=model_id(shared_server), messages=messages).choices[0]
    word = (full.message.content or "").split()[1]
    cut = sdk.chat.completions.create(model=model_id(shared_server), messages=messages, stop=[word])
    assert cut.choices[0].message.content == (full.message.content or "").split(word)[0].strip()
    sampled = [
        sdk.chat.completions.create(
            model=model_id(shared_server), messages=messages, temperature=1.5, top_p=0.9
        )
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert sampled[0] != sampled[1] != full.message.content, "sampled, not greedy"
    if shared_server.service.settings.engine == "ctranslate2":
        # CTranslate2 seeds its threads once: a request's seed is refused, never ignored.
        with pytest.raises(openai.BadRequestError, match="seed"):
            sdk.chat.completions.create(model=model_id(shared_server), messages=messages, seed=7)
        return
    seeded = [
        sdk.chat.completions.create(
            model=model_id(shared_server), messages=messages, temperature=1.5, top_p=0.9, seed=7
        )
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1], "one seed, one answer"


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"model": "gpt-4o"}, openai.NotFoundError, "does not exist"),
        ({"n": 2}, openai.BadRequestError, "n"),
        ({"messages": [{"role": "assistant", "content": "привет"}]}, openai.BadRequestError, "user's"),
        ({"messages": [{"role": "user", "content": " \n "}]}, openai.BadRequestError, "empty"),
        ({"max_tokens": 10_000}, openai.BadRequestError, "GEN_MAX_NEW_TOKENS"),
        ({"temperature": 5}, openai.BadRequestError, "temperature"),
    ],
)
def test_errors_come_in_openais_shape(
    shared_server: LiveServer, change: dict, error: type, words: str
) -> None:
    request = {"model": model_id(shared_server), "messages": [{"role": "user", "content": "привет"}]} | change
    with pytest.raises(error) as caught:
        client(shared_server).chat.completions.create(**request)
    assert isinstance(caught.value, openai.APIStatusError)
    assert words in caught.value.message
    assert caught.value.body is not None and {"message", "type"} <= set(caught.value.body)  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_streamed_request_shares_a_batch_with_answer_requests(server_settings, engine: str) -> None:
    settings = server_settings(engine=engine, engine_compute_type="float32")
    with serve(settings) as live, gated(live.service) as (gate, entered):
        sdk = openai.AsyncOpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0, timeout=60)
        async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
            first = asyncio.create_task(http.post("/answer", json=body("первый")))
            await wait_for(entered.is_set)

            async def streamed() -> str:
                stream = await sdk.chat.completions.create(
                    model=model_id(live), messages=[{"role": "user", "content": "привет"}], stream=True
                )
                return "".join([c.choices[0].delta.content or "" async for c in stream])

            rest = [asyncio.create_task(http.post("/answer", json=body(q))) for q in ("второй", "третий")]
            stream_task = asyncio.create_task(streamed())
            await wait_for(lambda: live.service.metrics.queue_depth._value.get() == 3)
            gate.set()
            answers = await asyncio.gather(first, *rest)
            streamed_text = await stream_task
            alone = (await http.post("/answer", json=body("привет"))).json()["answer"]
            metrics = (await http.get("/metrics")).text
    assert [r.status_code for r in answers] == [200] * 3
    assert streamed_text == alone
    # The first request, then the three that waited (the streamed one among them) in one call, then
    # `alone`. transformers takes the three into the first call between its steps instead, unless the
    # first answer ended at its first token.
    calls = metric(metrics, "generate_batch_size_count")
    assert calls == 3 or (engine == "transformers" and calls == 2)
    assert metric(metrics, "generate_batch_size_sum") == 5


def test_completions_report_usage_and_a_stream_ends_with_it_when_asked(shared_server: LiveServer) -> None:
    sdk, model = client(shared_server), model_id(shared_server)
    messages = [{"role": "user", "content": "привет, как дела?"}]
    engine = shared_server.service.engine
    assert engine is not None
    prompt_tokens = len(engine.encode([], "привет, как дела?"))
    short = sdk.chat.completions.create(model=model, messages=messages, max_tokens=8)
    assert short.usage is not None and short.choices[0].finish_reason == "length"
    assert (short.usage.prompt_tokens, short.usage.completion_tokens) == (prompt_tokens, 8)
    assert short.usage.total_tokens == prompt_tokens + 8

    plain = sdk.chat.completions.create(model=model, messages=messages)
    chunks = list(
        sdk.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    # OpenAI's semantics: one more chunk after the finish_reason, with no choices and the usage.
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    assert chunks[-2].choices[0].finish_reason == plain.choices[0].finish_reason
    assert all(c.usage is None for c in chunks[:-1])
    unasked = list(sdk.chat.completions.create(model=model, messages=messages, stream=True))
    assert unasked[-1].choices and all(c.usage is None for c in unasked)


def test_chat_completions_are_counted_and_timed_by_route(server_settings) -> None:
    with serve(server_settings()) as live:
        sdk, model = client(live), model_id(live)
        messages = [{"role": "user", "content": "привет, как дела?"}]
        sdk.chat.completions.create(model=model, messages=messages)
        list(sdk.chat.completions.create(model=model, messages=messages, stream=True))
        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.create(model="gpt-4o", messages=messages)
        httpx.post(f"{live.url}/answer", json=body("привет"))
        metrics = httpx.get(f"{live.url}/metrics").text
    chat = 'route="/v1/chat/completions"'
    assert metric(metrics, f'http_requests_total{{{chat},status="200"}}') == 2
    assert metric(metrics, f'http_requests_total{{{chat},status="404"}}') == 1
    assert metric(metrics, f"http_request_duration_seconds_count{{{chat}}}") == 3
    assert metric(metrics, f"http_request_duration_seconds_sum{{{chat}}}") > 0
    assert metric(metrics, 'http_requests_total{route="/answer",status="200"}') == 1
