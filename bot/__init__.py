"""Telegram front end: ``python -m bot`` (see ARCHITECTURE.md, section Bot).

Modules: ``settings`` (env), ``db`` (engine, migrations, start-up check),
``context_store`` (table user_context), ``model_client`` (POST /answer),
``speech`` (voice decoding and recognition), ``conversation`` (one turn:
context → model → reply → remember), ``handlers`` (one router per feature),
``middlewares`` (flood control), ``telegram_retry`` (Bot API retries), ``app``
(assembly). Delivery: ``inbox`` (table telegram_inbox), ``delivery`` (per-chat
workers over the inbox), ``polling`` / ``webhook`` (how updates come in),
``notices`` (apology while nothing can be stored), ``serve`` (run until SIGTERM,
then drain), ``model_facts_check`` (the server's context size at start-up).
"""
