"""The message catalogue: every text of bot/core/texts.py translated, and the committed .mo up to date."""

from __future__ import annotations

import gettext
import re
import string
from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from bot.core.i18n import LANGUAGES, LOCALES, build_i18n

TEXTS = Path(__file__).resolve().parents[2] / "bot" / "core" / "texts.py"


def extracted_ids() -> set[str]:
    """What ``pybabel extract -k N_`` finds in bot/core/texts.py."""
    return {
        str(message) for _, message, _, _ in extract_from_file("python", str(TEXTS), keywords={"N_": None})
    }


def catalogue(language: str) -> dict[str, str]:
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return {str(m.id): str(m.string) for m in read_po(po) if m.id and not m.fuzzy}


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_text_is_translated_with_the_same_placeholders() -> None:
    ids = extracted_ids()
    assert len(ids) > 20
    for language in LANGUAGES:
        if language == "ru":  # the message ids are the Russian texts
            continue
        translated = catalogue(language)
        assert ids <= set(translated), f"untranslated in {language}: {sorted(ids - set(translated))}"
        for msgid in ids:
            assert translated[msgid], f"empty {language} translation of {msgid!r}"
            assert fields(translated[msgid]) == fields(msgid), msgid
            assert not re.search("[а-яё]", translated[msgid], re.IGNORECASE), translated[msgid]


def test_committed_mo_files_match_their_po_sources() -> None:
    """A fresh install reads the .mo; a stale one would speak old texts (`pybabel compile -d bot/locales`)."""
    for language in LANGUAGES:
        mo = LOCALES / language / "LC_MESSAGES" / "messages.mo"
        if language == "ru":
            assert not mo.exists()
            continue
        with mo.open("rb") as f:
            compiled = {k: v for k, v in gettext.GNUTranslations(f)._catalog.items() if k}  # type: ignore[attr-defined]
        assert compiled == catalogue(language)


def test_the_loaded_catalogue_speaks_english() -> None:
    from bot.core import texts

    i18n = build_i18n()
    assert "en" in i18n.available_locales
    assert (
        i18n.gettext(texts.CONTEXT_CLEARED, locale="en")
        == "Done, I forgot our conversation. Let's start over!"
    )
    assert i18n.gettext(texts.CONTEXT_CLEARED, locale="ru") == texts.CONTEXT_CLEARED
