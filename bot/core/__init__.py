"""The ground floor: settings, the database, migrations, languages and local time. No Telegram calls."""
