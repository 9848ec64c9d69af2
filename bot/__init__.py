"""Telegram front end: ``python -m bot`` (see ARCHITECTURE.md, section Bot).

Modules: ``settings`` (env), ``db`` (engine, migrations, start-up check),
``scope`` (whose conversation: chat and sender), ``context_store`` and
``store_sql`` (tables user_context and chain_message), ``reply_chain`` (a group
reply's context), ``model_client`` (POST /answer), ``speech`` (voice decoding
and recognition), ``conversation`` (one turn: context → model → reply →
remember), ``addressing`` and ``filters`` (where the bot speaks in groups, who
may use it), ``commands`` (the command table, shared with ``terminal_chat``),
``texts`` and ``i18n`` (the message catalogue, ``locales/``), ``retention``
(the periodic purge), ``handlers`` (one router per feature), ``middlewares``,
``telegram_retry`` (Bot API retries), ``app`` (assembly). Delivery: ``inbox``
(table telegram_inbox), ``delivery`` (per-chat workers over the inbox),
``polling`` / ``webhook`` (how updates come in),
``notices`` (apology while nothing can be stored), ``serve`` (run until SIGTERM,
then drain), ``model_facts_check`` (the server's context size at start-up).
"""
