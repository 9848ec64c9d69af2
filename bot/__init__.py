"""Telegram front end: ``python -m bot`` (see ARCHITECTURE.md, section Bot).

Modules: ``settings`` (env), ``db`` (engine, migrations, start-up check),
``context_store`` (table user_context), ``model_client`` (POST /answer),
``speech`` (voice decoding and recognition), ``conversation`` (one turn:
context → model → reply → remember), ``handlers`` (one router per feature),
``middlewares``, ``telegram_retry`` (Bot API retries), ``app`` (assembly).
"""
