from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import pytest

from benchmarks.support.net import free_port
from benchmarks.support.speech import silence_ogg
from bot.core.speech import (
    SAMPLE_RATE,
    AudioDecodeError,
    AudioTooLong,
    FasterWhisperRecognizer,
    GoogleRecognizer,
    RecognitionUnavailable,
    decode_audio,
)


def test_telegram_voice_decodes_to_16khz_mono_float(russian_voice_ogg: bytes) -> None:
    audio = decode_audio(russian_voice_ogg)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 1.0 < len(audio) / SAMPLE_RATE < 4.0  # espeak says the phrase in about 1.6 s
    assert 0.05 < float(np.abs(audio).max()) <= 1.0


def test_other_containers_decode_too(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi",
         "-i", "sine=frequency=440:duration=1:sample_rate=44100", "-ac", "2", str(wav)],
        check=True,
    )  # fmt: skip
    audio = decode_audio(wav.read_bytes())
    assert abs(len(audio) - SAMPLE_RATE) < 0.02 * SAMPLE_RATE


@pytest.mark.parametrize("data", [b"", b"OggS" + bytes(500), b"definitely not audio" * 50])
def test_garbage_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(AudioDecodeError):
        decode_audio(data)


def test_audio_longer_than_the_limit_is_refused_while_decoding(russian_voice_ogg: bytes) -> None:
    with pytest.raises(AudioTooLong):
        decode_audio(russian_voice_ogg, max_seconds=0.5)


async def test_recognition_runs_off_the_event_loop(
    recognizer: FasterWhisperRecognizer, russian_voice_ogg: bytes
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = asyncio.get_running_loop().time()
    transcript = await recognizer.transcribe(russian_voice_ogg)
    elapsed = asyncio.get_running_loop().time() - started
    task.cancel()
    assert "сегодня" in transcript.lower()
    # The loop kept ticking while Whisper worked (a blocking call would allow ~0 ticks).
    assert ticks >= 0.4 * elapsed / 0.02


async def test_silence_recognises_to_nothing(recognizer: FasterWhisperRecognizer, tmp_path: Path) -> None:
    silent = silence_ogg(tmp_path)
    transcript = await recognizer.transcribe(silent)
    assert transcript == ""  # the handler then asks the user to record again


def test_google_backend_unreachable_is_reported(
    monkeypatch: pytest.MonkeyPatch, russian_voice_ogg: bytes
) -> None:
    pytest.importorskip("speech_recognition")
    # Route SpeechRecognition's urllib through a closed port: deterministic "service unreachable".
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{free_port()}")
    recognizer = GoogleRecognizer("ru")
    try:
        with pytest.raises(RecognitionUnavailable):
            recognizer.transcribe_sync(russian_voice_ogg)
    finally:
        recognizer.close()
