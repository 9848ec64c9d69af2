"""Voice messages: in-process OGG/Opus decoding (PyAV) and speech recognition.

The recogniser is built ONCE per process and runs in worker threads, so the
event loop keeps serving other users while a voice message is recognised.
"""

from __future__ import annotations

import asyncio
import io
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import av
import numpy as np

from bot.settings import Settings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000


class AudioDecodeError(ValueError):
    """The bytes are not audio that PyAV can decode."""


class AudioTooLong(ValueError):
    """The decoded audio is longer than allowed (the duration in the message may lie)."""


class RecognitionUnavailable(RuntimeError):
    """The recogniser cannot work right now (e.g. the online service is unreachable)."""


def decode_audio(data: bytes, max_seconds: float | None = None) -> np.ndarray:
    """Decode any container/codec PyAV knows (Telegram: OGG/Opus) to 16 kHz mono float32 in [-1, 1]."""
    max_samples = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioDecodeError("no audio stream")
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray()[0]
                    chunks.append(chunk)
                    total += chunk.shape[0]
                if max_samples is not None and total > max_samples:
                    raise AudioTooLong(f"audio longer than {max_seconds} s")
            for out in resampler.resample(None):  # flush
                chunks.append(out.to_ndarray()[0])
    except av.FFmpegError as exc:
        raise AudioDecodeError(f"undecodable audio: {type(exc).__name__}") from exc
    if not chunks:
        raise AudioDecodeError("no audio frames")
    return np.concatenate(chunks).astype(np.float32, copy=False)


class Recognizer(Protocol):
    async def transcribe(self, data: bytes) -> str:
        """Text spoken in the encoded audio ``data``; "" when nothing was recognised."""
        ...

    def close(self) -> None: ...


class _ThreadedRecognizer:
    """Decodes and recognises in its own bounded thread pool."""

    def __init__(self, max_seconds: float | None, threads: int) -> None:
        self.max_seconds = max_seconds
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="asr")

    async def transcribe(self, data: bytes) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.transcribe_sync, data)

    def transcribe_sync(self, data: bytes) -> str:
        return self.recognize(decode_audio(data, self.max_seconds)).strip()

    def recognize(self, audio: np.ndarray) -> str:
        raise NotImplementedError

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class FasterWhisperRecognizer(_ThreadedRecognizer):
    """faster-whisper (CTranslate2), offline; the model is loaded here, once."""

    def __init__(
        self,
        model: str,
        language: str,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 5,
        threads: int = 1,
        max_seconds: float | None = None,
    ) -> None:
        from faster_whisper import WhisperModel

        super().__init__(max_seconds, threads)
        self.language = language
        self.beam_size = beam_size
        self.model = WhisperModel(model, device=device, compute_type=compute_type, num_workers=threads)

    def recognize(self, audio: np.ndarray) -> str:
        segments, _ = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            condition_on_previous_text=False,
            # Whisper invents text for silence and noise ("Продолжение следует…"); the VAD model
            # that faster-whisper ships cuts those parts out before decoding.
            vad_filter=True,
        )
        # Segments are generated lazily: the decoding happens in this loop, in this thread.
        return " ".join(segment.text.strip() for segment in segments)


class GoogleRecognizer(_ThreadedRecognizer):
    """The original project's online recogniser (Google Web Speech via SpeechRecognition)."""

    def __init__(self, language: str, *, threads: int = 1, max_seconds: float | None = None) -> None:
        try:
            import speech_recognition
        except ImportError as exc:
            raise RuntimeError(
                "ASR_BACKEND=google needs SpeechRecognition: pip install '.[bot-google]'"
            ) from exc
        super().__init__(max_seconds, threads)
        self.language = language
        self._sr = speech_recognition
        self._recognizer = speech_recognition.Recognizer()

    def recognize(self, audio: np.ndarray) -> str:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        try:
            return str(
                self._recognizer.recognize_google(
                    self._sr.AudioData(pcm, SAMPLE_RATE, 2), language=self.language
                )
            )
        except self._sr.UnknownValueError:
            return ""
        except self._sr.RequestError as exc:
            raise RecognitionUnavailable(f"Google speech API: {type(exc).__name__}") from exc


def build_recognizer(settings: Settings) -> Recognizer:
    """The configured recogniser, loaded now (slow: call it once, at start-up, off the event loop)."""
    if settings.asr_backend == "google":
        return GoogleRecognizer(
            settings.asr_language, threads=settings.asr_threads, max_seconds=settings.voice_max_seconds
        )
    return FasterWhisperRecognizer(
        settings.asr_model,
        settings.asr_language,
        device=settings.asr_device,
        compute_type=settings.asr_compute_type,
        beam_size=settings.asr_beam_size,
        threads=settings.asr_threads,
        max_seconds=settings.voice_max_seconds,
    )
