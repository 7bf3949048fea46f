"""careful-monitor: lifecycle monitoring (the L of CAREFUL) for models trained on real + synthetic data."""

import os
import sys
import threading
from collections.abc import MutableMapping
from types import FrameType

__version__ = "0.1.0"

#: the commands that promise "SIGTERM at any moment exits 0" (README, Reliability)
_SERVICE_COMMANDS = frozenset({"run", "replay"})
#: options of the `main` group that take a value (`--log-level debug run ...`)
_GROUP_OPTIONS_WITH_VALUE = frozenset({"--log-level", "--log-format"})


def _cli_command(argv: list[str]) -> str | None:
    """The command this process runs when it is the careful-monitor CLI (`careful-monitor ...` or
    `python -m careful_monitor.cli ...`), else None (a library import, pytest, a notebook)."""
    entry = argv[0] if argv else ""
    if entry == "-m":  # `python -m careful_monitor.cli`: sys.argv[0] is "-m" while the package is imported
        orig = getattr(sys, "orig_argv", [])
        module = orig[orig.index("-m") + 1] if "-m" in orig[:-1] else ""
        if module != "careful_monitor.cli":
            return None
    elif entry.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".exe") != "careful-monitor":
        return None
    args = iter(argv[1:])
    for arg in args:
        if arg in _GROUP_OPTIONS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


#: set once SIGTERM asked this process to stop. The start-up handler raises SystemExit as well, but an
#: exception raised by a signal handler can be swallowed (it lands wherever the main thread is: a
#: `__del__`, a library's broad `except`), so every later stage of `run` also checks this event, and
#: it is the very event the service loop stops on: a SIGTERM is never lost.
TERMINATING = threading.Event()
#: seconds before a SIGTERM that came in the middle of an import is delivered again
RETRY_S = 0.05
_raised = False  # SystemExit raised by the start-up handler: the process is unwinding


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM before the command's own handler exists: remember it, unwind (closing what is open), exit 0.

    Not in the middle of an import: an exception raised there is swallowed by importlib's module-lock
    callbacks ("Exception ignored in ... _get_module_lock") or leaves a C extension half initialised
    (seen: SIGSEGV). Nor inside the store's libraries: an exception raised in the middle of a psycopg
    query leaves the connection ACTIVE, and SQLAlchemy's clean-up then fails with "can't change
    'autocommit' now", an error that replaces the SystemExit (seen: exit 1 in CI). Then the signal is
    sent again RETRY_S later, when that call is over; the stage boundaries check TERMINATING meanwhile.
    """
    global _raised
    TERMINATING.set()
    if _raised:
        return  # unwinding already: a second signal must not interrupt it
    if _uninterruptible(frame):
        again = threading.Timer(RETRY_S, os.kill, (os.getpid(), signum))
        again.daemon = True  # never waited for at exit
        again.start()
        return
    _raised = True
    raise SystemExit(0)


#: packages whose state an exception raised at an arbitrary line can corrupt (a connection mid-query)
_UNINTERRUPTIBLE_PACKAGES = frozenset({"sqlalchemy", "psycopg", "psycopg_pool", "alembic"})


def _uninterruptible(frame: FrameType | None) -> bool:
    """True when the main thread is inside an import or inside one of _UNINTERRUPTIBLE_PACKAGES."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        module = frame.f_globals.get("__name__")
        if isinstance(module, str) and module.partition(".")[0] in _UNINTERRUPTIBLE_PACKAGES:
            return True
        frame = frame.f_back
    return False


def exit_if_terminating() -> None:
    """A start-up stage boundary: leave (exit 0) if a SIGTERM came and its SystemExit was swallowed or deferred."""
    global _raised
    if TERMINATING.is_set():
        _raised = True
        raise SystemExit(0)


def _stop_cleanly_from_first_import() -> None:
    """Install the start-up SIGTERM handler, for `run` and `replay` only, as the very first thing they do.

    Nothing before the service loop has stored or committed anything, so leaving by SystemExit(0)
    (which runs every `finally` and `with` on the way out: store, HTTP server) is a clean stop. `run`
    replaces it with its graceful handler (finish the batch, persist, commit) when its loop starts.
    Any other import of the package (library use, tests) leaves signal handling alone.
    """
    if _cli_command(sys.argv) not in _SERVICE_COMMANDS:
        return
    import signal

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, exit_on_sigterm)


#: BLAS thread pools the CLI sizes to one thread unless the environment says otherwise (read by the BLAS
#: library when numpy loads it, so set before anything imports numpy)
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread(argv: list[str], environ: MutableMapping[str, str]) -> list[str]:
    """For a careful-monitor CLI process, `environ.setdefault(v, "1")` for each BLAS_THREAD_VARIABLES; returns
    the variables it set. Why: the engine's matrix products are small (a window of 1,000 x 20 rows times 20 x
    32 random frequencies); OpenBLAS's worker threads save nothing on them and, when the machine's other
    cores are busy, wait for a core: measured on 2 cores with one other busy process, the daemon window took
    39.9 ms with OpenBLAS's default threads and 14.8 ms with one (`careful-monitor bench`'s window case).
    An operator who wants more sets the variable. A library import (tests, notebooks) is left alone."""
    if _cli_command(argv) is None:
        return []
    missing = [v for v in BLAS_THREAD_VARIABLES if v not in environ]
    for v in missing:
        environ[v] = "1"
    return missing


_stop_cleanly_from_first_import()
one_blas_thread(sys.argv, os.environ)
