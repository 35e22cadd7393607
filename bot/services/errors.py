"""Domain errors carry a stable code; handlers translate the code into the user's language."""

from __future__ import annotations


class DomainError(Exception):
    """A rule said no. `code` is stable (handlers key their messages on it); `params` fill them."""

    def __init__(self, code: str, /, **params: object) -> None:
        # Positional-only: a parameter may itself be called `code` (a coupon code).
        super().__init__(code)
        self.code = code
        self.params = params

    def __repr__(self) -> str:
        return f"DomainError({self.code!r}, {self.params!r})"
