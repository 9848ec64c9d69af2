"""/settings: the chat's reply mode, language and learning, on an inline keyboard, for its admins.

In a group only administrators (bot/telegram/admins.py) open or press it;
anyone else gets one line saying so. In a private chat it offers the language
only. Each press is stored at once (bot/storage/chat_settings.py) and the
keyboard redrawn; turning learning on posts one announcement to the group.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.core import texts
from bot.core.i18n import gettext as _
from bot.core.learning import Learning
from bot.settings import Settings
from bot.storage.chat_settings import ChatSettings, ChatSettingsStore
from bot.storage.context_store import ContextStoreUnavailable
from bot.telegram import addressing
from bot.telegram.admins import Admins
from bot.telegram.sending import reply


class SettingsPress(CallbackData, prefix="cfg"):
    field: str  # mode | language | learning | delete
    value: str


_MODES = {"mention": texts.BUTTON_MODE_MENTION, "all": texts.BUTTON_MODE_ALL, "off": texts.BUTTON_MODE_OFF}
_LANGUAGES = {
    "auto": texts.BUTTON_LANGUAGE_AUTO,
    "ru": texts.BUTTON_LANGUAGE_RU,
    "en": texts.BUTTON_LANGUAGE_EN,
}
_LEARNING = {"off": texts.BUTTON_LEARNING_OFF, "on": texts.BUTTON_LEARNING_ON}
_COLUMNS = {"mode": "reply_mode", "language": "language", "learning": "learning"}


def keyboard(current: ChatSettings, group: bool) -> InlineKeyboardMarkup:
    chosen = {
        "mode": current.reply_mode,
        "language": current.language or "auto",
        "learning": "on" if current.learning else "off",
    }
    rows = (
        [("mode", _MODES), ("language", _LANGUAGES), ("learning", _LEARNING)]
        if group
        else [("language", _LANGUAGES)]
    )
    builder = InlineKeyboardBuilder()
    for field, labels in rows:
        builder.row(
            *(
                InlineKeyboardButton(
                    text=("✓ " if chosen[field] == value else "") + _(label),
                    callback_data=SettingsPress(field=field, value=value).pack(),
                )
                for value, label in labels.items()
            )
        )
    if group:
        builder.row(
            InlineKeyboardButton(
                text=_(texts.BUTTON_DELETE_CORPUS),
                callback_data=SettingsPress(field="delete", value="chat").pack(),
            )
        )
    return builder.as_markup()


async def open_settings(message: Message, bot: Bot, admins: Admins, chat_settings: ChatSettings) -> None:
    group = addressing.in_group(message)
    if group and not await admins.is_admin(bot, message.chat, message.from_user, message.sender_chat):
        await reply(message, _(texts.SETTINGS_ADMINS_ONLY))
        return
    text = _(texts.SETTINGS_GROUP) if group else _(texts.SETTINGS_PRIVATE)
    await message.answer(text, reply_markup=keyboard(chat_settings, group))


async def press(
    query: CallbackQuery,
    callback_data: SettingsPress,
    bot: Bot,
    admins: Admins,
    chat_settings_store: ChatSettingsStore,
    learning: Learning,
    settings: Settings,
) -> None:
    message = query.message
    if not isinstance(message, Message):  # too old for Telegram to send it
        await query.answer()
        return
    group = addressing.in_group(message)
    field, value = callback_data.field, callback_data.value
    if group and not await admins.is_admin(bot, message.chat, query.from_user):
        await query.answer(_(texts.SETTINGS_ADMINS_ONLY), show_alert=True)
        return
    if not _valid(field, value, group):
        await query.answer()
        return
    if field == "learning" and value == "on" and not learning.enabled:
        await query.answer(_(texts.LEARNING_NEEDS_SECRET), show_alert=True)
        return
    chat_id = message.chat.id
    try:
        before = await chat_settings_store.get(chat_id)
        if field == "delete":
            deleted = await learning.corpus.delete_chat(chat_id)
            await query.answer(_(texts.CORPUS_DELETED).format(messages=deleted), show_alert=True)
            return
        await chat_settings_store.set(chat_id, _COLUMNS[field], _stored(field, value))  # type: ignore[arg-type]
        after = await chat_settings_store.get(chat_id)
    except ContextStoreUnavailable:
        await query.answer(_(texts.DATABASE_UNAVAILABLE), show_alert=True)
        return
    await query.answer(_(texts.SETTINGS_SAVED))
    if after != before:
        await message.edit_reply_markup(reply_markup=keyboard(after, group))
    if after.learning and not before.learning:
        await message.answer(announcement(settings.corpus_retention_days))


def announcement(retention_days: int) -> str:
    retention = (
        _(texts.CORPUS_RETENTION_FOREVER)
        if retention_days == 0
        else _(texts.CORPUS_RETENTION_DAYS).format(days=retention_days)
    )
    return _(texts.LEARNING_ANNOUNCEMENT).format(retention=retention)


def _valid(field: str, value: str, group: bool) -> bool:
    choices = {"mode": _MODES, "language": _LANGUAGES, "learning": _LEARNING, "delete": {"chat": ""}}
    return (group or field == "language") and value in choices.get(field, {})


def _stored(field: str, value: str) -> object:
    if field == "learning":
        return value == "on"
    if field == "language" and value == "auto":
        return None
    return value


def build_router() -> Router:
    router = Router(name="settings")
    router.message.register(open_settings, Command("settings"))
    router.callback_query.register(press, SettingsPress.filter(), F.message)
    return router
