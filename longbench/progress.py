"""Progress on stderr: tqdm's bars on a terminal; elsewhere (a Slurm or nohup log, a pipe) a plain line now and
then with the counts, the rate and the time left, instead of tqdm's carriage returns and cursor moves.

:func:`progress_bar` takes tqdm's keyword arguments and returns either a tqdm bar or a :class:`PlainProgress`,
which offers the part of tqdm's interface the package uses (``update``, ``set_postfix_str``, ``close``,
``format_dict``, ``n``, ``total``, iteration and the context manager). ``TQDM_DISABLE=1`` silences both.
``LONGBENCH_PROGRESS_INTERVAL`` sets the seconds between plain lines (default 60).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

INTERVAL_ENV = "LONGBENCH_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 60.0
_OFF = ("1", "true", "yes", "on")


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class PlainProgress:
    """One line per ``interval`` seconds: ``<desc>: 12/67 samples (18%), 1.20 samples/s, ETA 0:00:45``."""

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        total: float | None = None,
        initial: float = 0,
        desc: str = "",
        unit: str = "it",
        stream: TextIO | None = None,
        interval: float | None = None,
        disable: bool | None = False,
        **_: Any,
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total = total
        self.n = initial
        self._initial = initial
        self.desc = desc
        self.unit = unit
        self.postfix = ""
        self._stream = stream if stream is not None else sys.stderr
        self._interval = _interval() if interval is None else interval
        self._started = time.monotonic()
        self._last = self._started
        self.disable = bool(disable)

    @property
    def format_dict(self) -> dict[str, Any]:
        return {"n": self.n, "total": self.total, "elapsed": time.monotonic() - self._started}

    def line(self) -> str:
        """The progress line as it would be printed now."""
        elapsed = time.monotonic() - self._started
        rate = (self.n - self._initial) / elapsed if elapsed > 0 else 0.0
        count = f"{self.n:g}/{self.total:g}" if self.total else f"{self.n:g}"
        parts = [f"{self.desc}: {count} {self.unit}s" if self.desc else f"{count} {self.unit}s"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts.append(f"{rate:.2f} {self.unit}s/s")
        if self.postfix:
            parts.append(self.postfix)
        if self.total and rate > 0:
            parts.append(f"ETA {_duration((self.total - self.n) / rate)}")
        return ", ".join(parts)

    def update(self, count: float = 1) -> None:
        self.n += count
        now = time.monotonic()
        if not self.disable and now - self._last >= self._interval:
            self._last = now
            print(self.line(), file=self._stream, flush=True)

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update(1)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(iterable: Iterable[Any] | None = None, **options: Any) -> Any:
    """A tqdm bar when stderr is a terminal, else a :class:`PlainProgress` (same keyword arguments)."""
    if os.environ.get("TQDM_DISABLE", "").strip().lower() in _OFF:
        options["disable"] = True
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(iterable, **options)
    return PlainProgress(iterable, **options)
