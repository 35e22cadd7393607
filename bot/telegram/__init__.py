"""The Telegram edge: the outbox and its budget, flood waits, update de-dup, the chatter lane, FSM storage,
webhook serving, command menus, the middlewares around every handler, and the few Bot API calls that
services need done (leaders, refunds)."""
