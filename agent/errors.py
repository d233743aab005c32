"""One clear line for bad input: entry points turn these into ``error: ...`` and exit 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: exceptions that mean "the user's input is wrong", not "the program is broken"
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    PermissionError,
    FileExistsError,
    NotADirectoryError,
)


def friendly_errors(fn: F) -> F:
    """Print a user error as one line on stderr and exit with status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
