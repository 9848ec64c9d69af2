"""Time to first token and between tokens, per engine and route, in /metrics."""

from __future__ import annotations

import httpx
import pytest

from tests.model_server.conftest import ENGINES, serve
from tests.model_server.test_api import body, metric
from tests.model_server.test_openai import client, model_id

CHAT = 'route="/v1/chat/completions"'


@pytest.mark.parametrize("engine", ENGINES)
def test_a_streamed_answer_is_timed_to_its_first_token_and_between_tokens(server_settings, engine) -> None:
    with serve(server_settings(engine=engine, engine_compute_type="float32")) as live:
        messages = [{"role": "user", "content": "привет, как дела?"}]
        stream = client(live).chat.completions.create(model=model_id(live), messages=messages, stream=True)
        pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
        metrics = httpx.get(f"{live.url}/metrics").text
    labels = f'engine="{engine}",{CHAT}'
    assert len(pieces) > 2
    assert metric(metrics, f"time_to_first_token_seconds_count{{{labels}}}") == 1
    assert metric(metrics, f"inter_token_seconds_count{{{labels}}}") == len(pieces) - 1
    first = metric(metrics, f"time_to_first_token_seconds_sum{{{labels}}}")
    between = metric(metrics, f"inter_token_seconds_sum{{{labels}}}")
    # Both fit in the request's own time, from its arrival to its last byte.
    assert 0 < first and 0 < between
    assert first + between <= metric(metrics, f"http_request_duration_seconds_sum{{{CHAT}}}")
    # Buckets a GPU's milliseconds per token fit in, and a loaded CPU's seconds.
    bucket = f'engine="{engine}",le="{{}}",{CHAT}'
    assert metric(metrics, "inter_token_seconds_bucket{" + bucket.format("0.005") + "}") >= 0
    assert metric(metrics, "time_to_first_token_seconds_bucket{" + bucket.format("10.0") + "}") == 1


def test_answers_that_do_not_stream_are_not_timed_per_token(server_settings) -> None:
    with serve(server_settings()) as live:
        httpx.post(f"{live.url}/answer", json=body("привет")).raise_for_status()
        messages = [{"role": "user", "content": "привет"}]
        client(live).chat.completions.create(model=model_id(live), messages=messages)
        metrics = httpx.get(f"{live.url}/metrics").text
    assert metric(metrics, 'http_requests_total{route="/answer",status="200"}') == 1
    assert metric(metrics, f'http_requests_total{{{CHAT},status="200"}}') == 1
    assert "time_to_first_token_seconds_count{" not in metrics
    assert "inter_token_seconds_count{" not in metrics
