"""Middlewares, in the order DESIGN.md gives: de-dup → errors → DB session → actor → throttle; activity."""
