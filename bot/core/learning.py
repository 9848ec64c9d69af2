"""Learning from a group, with consent: what goes into the corpus, and how it is anonymised.

Only groups whose admins turned learning on (or LEARNING_DEFAULT) are
collected, and only people who have not sent /optout. Each text goes through
the export's own anonymiser (:mod:`dialogue.anonymize`): contacts, and the
names of the chat's participants as far as the bot has seen them (senders and
mentioned users of that chat, bounded per chat and per process: see
docs/groups.md for what this cannot catch). The sender becomes an author key
(:func:`bot.storage.corpus.author_key`), never an id.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime

from bot.storage.corpus import Corpus, CorpusMessage, author_key
from dialogue.anonymize import Names, anonymize
from dialogue.format import normalize

NAMES_PER_CHAT = 500
CHATS = 2000


class LearningDisabled(RuntimeError):
    """CORPUS_SECRET is not set: nothing may be collected."""


class ChatNames:
    """The participants' names seen per chat, least recently seen dropped first."""

    def __init__(self, per_chat: int = NAMES_PER_CHAT, chats: int = CHATS) -> None:
        self.per_chat = per_chat
        self.chats = chats
        self._seen: OrderedDict[int, OrderedDict[str, None]] = OrderedDict()
        self._names: dict[int, Names] = {}

    def see(self, chat_id: int, names: Iterable[str]) -> Names:
        """Remember ``names`` in ``chat_id``; the chat's :class:`Names` to replace with."""
        seen = self._seen.setdefault(chat_id, OrderedDict())
        self._seen.move_to_end(chat_id)
        changed = dropped = False
        for name in names:
            if name in seen:
                seen.move_to_end(name)
                continue
            seen[name] = None
            changed = True
            if len(seen) > self.per_chat:
                seen.popitem(last=False)
                dropped = True
        if len(self._seen) > self.chats:
            old, _ = self._seen.popitem(last=False)
            self._names.pop(old, None)
        current = self._names.get(chat_id)
        if current is None or dropped:  # a dropped name's forms must go: build afresh
            current = self._names[chat_id] = Names(seen)
        elif changed:
            for name in seen:
                current.add(name)
        return current


class Learning:
    """The corpus with its key and the names seen; ``enabled`` only with CORPUS_SECRET."""

    def __init__(self, corpus: Corpus, secret: str, names: ChatNames | None = None) -> None:
        self.corpus = corpus
        self._secret = secret
        self.names = names or ChatNames()

    @property
    def enabled(self) -> bool:
        return bool(self._secret)

    def key(self, sender_id: int) -> str:
        if not self._secret:
            raise LearningDisabled("CORPUS_SECRET is not set")
        return author_key(self._secret, sender_id)

    async def collect(
        self,
        *,
        chat_id: int,
        message_id: int,
        reply_to_message_id: int | None,
        sent_at: datetime,
        sender_id: int,
        text: str,
        names: Iterable[str],
    ) -> bool:
        """Anonymise and store one group message; False when it was not stored (opted out, empty)."""
        known = self.names.see(chat_id, names)
        texts = [anonymize(normalize(text))]
        known.replace_in(texts)
        if not texts[0]:
            return False
        row = CorpusMessage(chat_id, message_id, reply_to_message_id, sent_at, self.key(sender_id), texts[0])
        return await self.corpus.add(row)
