"""A group reply's context is its reply chain, as in training (see docs/architecture.md, the bot).

The replied-to message comes with the update (its text included); what it
replied to, and so on, comes from the stored chain messages (the messages the
bot answered and its own answers). Roles: the asker's messages are "user", the
bot's are "bot", and anyone else's alternate backwards from the query, as the
speaker tags of the shared format do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.storage.context_store import ChainMessage, ContextStore
from dialogue.format import Role, Turn


@dataclass(frozen=True, slots=True)
class Replied:
    """The replied-to message as the update shows it (text already normalised)."""

    message_id: int
    role: Role
    text: str
    sender_id: int


def chain_turns(chain: Sequence[ChainMessage], asker_id: int) -> list[Turn]:
    """Turns oldest first from a chain given newest first (the replied-to message first)."""
    turns = []
    for distance, message in enumerate(chain, start=1):
        if message.role == "bot":
            role: Role = "bot"
        elif message.sender_id == asker_id:
            role = "user"
        else:  # the query is "user" at distance 0, so odd distances are the other speaker
            role = "bot" if distance % 2 else "user"
        turns.append(Turn(role, message.text))
    return turns[::-1]


async def chain_context(
    store: ContextStore, chat_id: int, replied: Replied, asker_id: int, size: int
) -> list[Turn]:
    stored = await store.chain(chat_id, replied.message_id, size)
    if stored:  # the chain starts at the replied-to message itself
        chain = [message for _, message in stored]
    elif replied.text and replied.role != "bot":
        # A message the bot never saw: the chain ends with it. The bot's own message unknown
        # to the store is no dialogue (a notice, the fallback line, or an answer forgotten by
        # /clear_context or retention): its text is no context.
        chain = [ChainMessage(replied.role, replied.text, replied.sender_id)]
    else:
        chain = []
    return chain_turns(chain, asker_id)
