"""Training progress: a rich progress bar on a terminal, plain lines every 10 s otherwise."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class Progress:
    """A rich progress bar on a terminal, plain lines otherwise.

    Args:
        total: the last epoch.
        start: the epoch training starts after (0, or a resumed run's).
        enabled: a bar (``None``: when stdout is a terminal), else plain lines.
        log: where plain lines go.
        runs: how many runs train together; with more than one, the loss and best shown
            are the lowest of the runs.
    """

    def __init__(
        self,
        total: int,
        start: int,
        enabled: bool | None,
        log: Callable[[str], None],
        runs: int = 1,
    ):
        from rich.console import Console

        self.console = Console(stderr=False)
        self.total, self.start, self.log = total, start, log
        self.label = "training" if runs == 1 else f"training {runs} seeds"
        self.suffix = "" if runs == 1 else f"  (lowest of {runs} seeds)"
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.last_print = -math.inf
        self.bar = None
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn(f"[bold]{self.label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("best {task.fields[best]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.bar.add_task("train", total=total, completed=start, loss="-", best="-")
            self.bar.start()

    def update(self, epoch: int, loss: float, best: float, elapsed: float, run_start: float):
        if self.bar is not None:
            self.bar.update(self.task, completed=epoch, loss=f"{loss:.4g}", best=f"{best:.4g}")
            return
        now = time.perf_counter()
        if now - self.last_print < 10 and epoch not in (self.start + 1, self.total):
            return
        self.last_print = now
        done = epoch - self.start
        rate = (now - run_start) / max(done, 1)
        eta = rate * (self.total - epoch)
        self.log(
            f"epoch {epoch}/{self.total}  loss {loss:.5g}  best {best:.5g}  "
            f"elapsed {elapsed:.0f}s  eta {eta:.0f}s{self.suffix}"
        )

    def close(self):
        if self.bar is not None:
            self.bar.stop()
