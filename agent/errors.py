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


def user_errors() -> tuple[type[BaseException], ...]:
    """``USER_ERRORS``, plus ``envs.robots``' ``RobotError`` once that module is loaded: a robot
    that cannot be reached or refuses a request is the user's setup, and its message says the
    fix (``pip install ...``, start the bridge server). Looked up, not imported, so entry points
    without robots do not load ``envs``; a ``RobotError`` cannot exist before it is loaded."""
    adapter = sys.modules.get("envs.robots.adapter")
    return USER_ERRORS if adapter is None else (*USER_ERRORS, adapter.RobotError)


#: the Ctrl-C line of the entry points that write as they go
INTERRUPTED = (
    "interrupted: what was written is complete (collections, merges and training "
    "snapshots are written atomically); the same command resumes agent.collect and "
    "agent.merge, and agent.train with resume=true"
)


def friendly_errors(fn: F | None = None, *, interrupted: str = INTERRUPTED) -> Any:
    """Print a user error as one line on stderr and exit with status 2; Ctrl-C prints
    ``interrupted`` (what was kept and how to go on) and exits 130. Use as ``@friendly_errors``
    or ``@friendly_errors(interrupted="interrupted: ...")``."""
    if fn is None:
        return functools.partial(friendly_errors, interrupted=interrupted)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except user_errors() as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print(interrupted, file=sys.stderr)
            sys.exit(130)
        except (MemoryError, RuntimeError) as e:
            if not is_out_of_memory(e):
                raise
            print(f"error: {out_of_memory_line(e)}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def is_out_of_memory(e: BaseException) -> bool:
    """A host or GPU allocation failure (torch raises these as RuntimeError subclasses)."""
    text = str(e)
    return isinstance(e, MemoryError) or any(
        s in text for s in ("can't allocate memory", "out of memory", "Out of memory")
    )


def out_of_memory_line(e: BaseException) -> str:
    """One line for an allocation failure: what failed and what to lower."""
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
    if len(first) > 160:
        first = first[:157] + "..."
    return (
        f"out of memory ({first}): lower batch_size (training) or the number of workers / "
        "samples, or run where there is more memory; checkpoints already written are intact"
    )


def ignore_sigint() -> None:
    """A worker pool's initializer: Ctrl-C goes to the parent alone, which prints one line and
    stops the pool (workers that handled it too printed a traceback each)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
