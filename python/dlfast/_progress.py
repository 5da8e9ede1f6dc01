"""Keras-like progress output for fit/evaluate: one line per epoch."""

import sys
import time


def _fmt_logs(logs):
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class EpochProgress:
    """verbose=1: a bar redrawn in place (at most every 0.1 s) and closed with the epoch's
    logs; verbose=2: one plain line per epoch; verbose=0: silent."""

    def __init__(self, epochs, steps, verbose, stream=None):
        self.epochs, self.steps, self.verbose = epochs, steps, verbose
        self.stream = stream or sys.stdout

    def begin(self, epoch):
        self.start = self.last = time.perf_counter()
        if self.verbose == 1:
            self.stream.write(f"Epoch {epoch + 1}/{self.epochs}\n")

    def step(self, done):
        if self.verbose != 1:
            return
        now = time.perf_counter()
        if now - self.last >= 0.1:
            self.last = now
            self.stream.write("\r" + self._bar(done, now))
            self.stream.flush()

    def end(self, epoch, logs):
        if not self.verbose:
            return
        now = time.perf_counter()
        if self.verbose == 1:
            self.stream.write("\r" + self._bar(self.steps, now) + " - " + _fmt_logs(logs) + "\n")
        else:
            elapsed = now - self.start
            self.stream.write(f"Epoch {epoch + 1}/{self.epochs} - {elapsed:.2f}s - "
                              f"{1e3 * elapsed / max(self.steps, 1):.2f}ms/step - "
                              f"{_fmt_logs(logs)}\n")
        self.stream.flush()

    def _bar(self, done, now, width=20):
        filled = int(width * done / max(self.steps, 1))
        elapsed = now - self.start
        per_step = 1e3 * elapsed / max(done, 1)
        w = len(str(self.steps))
        return (f"{done:>{w}}/{self.steps} [{'=' * filled}{'.' * (width - filled)}] "
                f"{elapsed:.1f}s {per_step:.2f}ms/step")
