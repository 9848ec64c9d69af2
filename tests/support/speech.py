"""Forwards to benchmarks/support/speech.py until the tests outside tests/finetuning import it there."""

from benchmarks.support.speech import assemble_whisper_base, silence_ogg, speech_ogg

__all__ = ["assemble_whisper_base", "silence_ogg", "speech_ogg"]
