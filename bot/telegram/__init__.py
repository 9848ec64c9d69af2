"""Telegram: Bot and Dispatcher, routers and filters, addressing, flood control, sending, menu."""
