"""Domain logic: plain async functions over a database session. No Telegram here."""
