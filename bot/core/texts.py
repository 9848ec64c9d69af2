"""Everything the bot says to users, in one place: the message ids of the catalogue.

The ids are the Russian texts (Russian is the default language, so a text that
escapes translation still reads right); ``bot/locales/en`` translates them.
Callers translate at the moment they speak: ``gettext(texts.START)`` (aiogram's
i18n picks the user's language, see :mod:`bot.core.i18n`). After changing a text:
``pybabel extract -k N_ -o bot/locales/messages.pot bot/core/texts.py``, then
``pybabel update -i bot/locales/messages.pot -d bot/locales`` and
``pybabel compile -d bot/locales`` (the test of the catalogue checks all three).
"""

from __future__ import annotations


def N_(message: str) -> str:  # gettext's name for "mark for translation, translate later"
    return message


# The command table's descriptions (bot/core/commands.py).
CMD_START = N_("начать разговор")
CMD_HELP = N_("что умеет бот")
CMD_CLEAR_CONTEXT = N_("забыть наш разговор в этом чате")
CMD_FORGET = N_("удалить всё, что я о тебе храню")

START = N_(
    "Привет! Я разговорный бот. Пиши мне текстом или присылай голосовые — я отвечу.\n"
    "Я помню несколько последних сообщений; /clear_context начинает разговор заново."
)
START_TERMINAL = N_(
    "Привет! Я разговорный бот. Пиши мне — я отвечу.\n"
    "Я помню несколько последних сообщений; /clear_context начинает разговор заново."
)
START_GROUP = N_(
    "Привет! В группе я отвечаю, когда ко мне обращаются: упомяни меня или ответь на моё сообщение."
)
HELP = N_("Я отвечаю на текстовые и голосовые сообщения.\n\nКоманды:\n{commands}\n\n{retention}")
HELP_TERMINAL_EXIT = N_("/exit — выйти (или Ctrl-D)")
RETENTION_DAYS = N_("Я храню переписку {days} дн. после последнего сообщения; /forget удаляет её сразу.")
RETENTION_FOREVER = N_("Я храню переписку, пока ты не удалишь её командой /forget.")
UNKNOWN_COMMAND = N_("Такой команды я не знаю. /help — список команд.")
CONTEXT_CLEARED = N_("Готово, я забыл наш разговор. Начнём сначала!")
FORGOTTEN = N_("Готово: удалены разговоры ({conversations}) и сообщения ({messages}) во всех чатах.")
UNSUPPORTED_CONTENT = N_(
    "Я понимаю только текст и голосовые сообщения. Напиши мне что-нибудь или запиши голосовое."
)
NOT_ALLOWED = N_("Извини, этот бот доступен только для приглашённых пользователей.")
# The answer when the model produced nothing (the model server no longer substitutes one).
FALLBACK_ANSWER = N_("Хм, даже не знаю, что на это ответить.")

MODEL_UNAVAILABLE = N_("Модель сейчас недоступна. Попробуй ещё раз через минуту.")
MODEL_TIMEOUT = N_("Модель думает слишком долго. Попробуй ещё раз чуть позже.")
MODEL_FAILED = N_("У модели что-то сломалось. Попробуй ещё раз чуть позже.")
MODEL_REJECTED = N_("Не получилось ответить на это сообщение. Попробуй сформулировать иначе.")
DATABASE_UNAVAILABLE = N_("Извини, у меня временные проблемы с памятью. Попробуй ещё раз чуть позже.")
INTERNAL_ERROR = N_("Ой, у меня что-то сломалось. Попробуй ещё раз чуть позже.")
CONTEXT_NOT_SAVED = N_("(Не получилось запомнить это сообщение: следующий ответ может его не учитывать.)")

VOICE_TOO_LONG = N_("Голосовое слишком длинное: я понимаю сообщения до {seconds} секунд.")
VOICE_TOO_BIG = N_("Голосовое слишком большое: я понимаю файлы до {megabytes:.1f} МБ.")
VOICE_DOWNLOAD_FAILED = N_("Не получилось скачать голосовое сообщение. Попробуй отправить его ещё раз.")
VOICE_UNREADABLE = N_("Не получилось прочитать аудио: файл повреждён или в незнакомом формате.")
VOICE_EMPTY = N_("Не расслышал ни слова. Попробуй записать ещё раз, погромче и почётче.")
VOICE_UNAVAILABLE = N_("Распознавание речи сейчас недоступно. Напиши, пожалуйста, текстом.")
RECOGNIZED = N_("Распознано: {transcript}")

# Flood control drops the message (bot/telegram/flood_control.py): the text says so.
TOO_MANY_MESSAGES = N_(
    "Ты пишешь слишком часто, и я пропускаю сообщения. Подожди {seconds} с и напиши снова."
)

# Per-chat settings (bot/telegram/handlers/settings.py) and learning (docs/groups.md).
CMD_SETTINGS = N_("настройки этого чата")
CMD_OPTOUT = N_("не учиться на моих сообщениях")
CMD_OPTIN = N_("снова разрешить учиться на моих сообщениях")
SETTINGS_TELEGRAM_ONLY = N_("Настройки есть только в Telegram.")
SETTINGS_GROUP = N_(
    "Настройки этого чата (✓ — как сейчас).\n"
    "По рядам: когда я отвечаю, на каком языке, учусь ли я на переписке группы."
)
SETTINGS_PRIVATE = N_("На каком языке мне говорить с тобой (✓ — как сейчас):")
SETTINGS_ADMINS_ONLY = N_("Настройки чата меняют только его администраторы.")
SETTINGS_SAVED = N_("Сохранено.")
BUTTON_MODE_MENTION = N_("по упоминанию")
BUTTON_MODE_ALL = N_("на всё")
BUTTON_MODE_OFF = N_("только команды")
BUTTON_LANGUAGE_AUTO = N_("язык: авто")
BUTTON_LANGUAGE_RU = N_("русский")
BUTTON_LANGUAGE_EN = N_("английский")
BUTTON_LEARNING_OFF = N_("не учиться")
BUTTON_LEARNING_ON = N_("учиться на переписке")
BUTTON_DELETE_CORPUS = N_("удалить собранное здесь")
LEARNING_NEEDS_SECRET = N_("Обучение не включить: у бота не задан CORPUS_SECRET.")
LEARNING_ANNOUNCEMENT = N_(
    "Администратор включил обучение: я сохраняю текст сообщений этой группы (и расшифровки голосовых, "
    "которые распознаю), чтобы учиться на них. Имена участников, упоминания, ссылки, почта, телефоны, "
    "номера карт и IP-адреса заменяются метками, автор хранится только как обезличенный ключ. "
    "Храню {retention}.\n"
    "/optout — не сохранять твои сообщения ни в одном чате и удалить собранное (/optin — вернуть), "
    "/forget — удалить всё, что я о тебе храню."
)
CORPUS_RETENTION_DAYS = N_("{days} дн.")
CORPUS_RETENTION_FOREVER = N_("пока их не удалят")
CORPUS_DELETED = N_("Удалено собранных здесь сообщений: {messages}.")
OPTED_OUT = N_(
    "Готово: я больше не сохраняю твои сообщения для обучения ни в одном чате и удалил собранные "
    "({messages}). /optin — снова разрешить."
)
OPTED_IN = N_(
    "Готово: в группах, где включено обучение, я снова сохраняю твои сообщения. /optout — запретить."
)
LEARNING_NOT_CONFIGURED = N_("Я ни в одном чате не сохраняю сообщения для обучения.")
