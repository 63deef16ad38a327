"""The installed ``stnca`` command (and ``python -m stnca``): Ctrl-C at any moment, the
imports included, ends it with one line and exit code 130.

This module imports nothing heavy (the package's ``__init__`` is lazy), so its guards are in
place before JAX is: Ctrl-C that lands in a garbage-collector callback or a ``__del__``
(JAX registers one that runs on every collection) would otherwise be printed as "Exception
ignored ... KeyboardInterrupt" and lost, and the command would go on to its end.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading

BEFORE_START = "interrupted before the command started; nothing was written"
"""What Ctrl-C during the command's imports says."""


def _redeliver_interrupts(unraisable: sys.UnraisableHookArgs, previous=sys.unraisablehook) -> None:
    """``sys.unraisablehook``: an interrupt that a callback swallowed is sent again a moment
    later (sent at once, it would land in this hook and be swallowed too), to the command's
    own code; anything else goes to the previous hook."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        threading.Timer(0.01, _thread.interrupt_main).start()
        return
    previous(unraisable)


def _leave(code: int) -> None:
    if code == 130:
        # Interrupted: XLA's worker threads may still be running the step that Ctrl-C cut
        # short, and tearing the interpreter down under them crashed (a segmentation fault
        # in about 1 of 5 interrupts during training). Every file is already complete (each
        # write is atomic), so leave at once without the teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main() -> None:
    """The console script: ``stnca.cli.run`` with the interrupt guards."""
    sys.unraisablehook = _redeliver_interrupts
    # Ctrl-C waits until the imports are done: inside a compiled extension's initialisation
    # (jaxlib's) it became "ImportError: Encountered an error while initializing the
    # extension" and a traceback (3 of 25 interrupts in the first half second)
    hold = hasattr(signal, "pthread_sigmask")
    if hold:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        try:
            from .cli import run
        finally:
            if hold:  # a Ctrl-C that came meanwhile is delivered now, as KeyboardInterrupt
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        code = run()
    except KeyboardInterrupt:  # before ``run`` took over (it reports its own)
        print(f"error: {BEFORE_START}", file=sys.stderr)
        code = 130
    _leave(code)
