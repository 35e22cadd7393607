"""Community Commerce Bot: a Telegram bot that turns group chats into private-domain shops."""
