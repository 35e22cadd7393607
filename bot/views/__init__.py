"""What handlers and jobs both show: texts, cards, keyboards, notices and announcements."""
