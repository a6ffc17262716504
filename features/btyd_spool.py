"""The whole base's purchase summaries spooled to files part after part, and the BTYD fits made
from them (``features.scan`` fills the spools in its first pass; the fits are made there or, while
the workers already read their parts, by ``features.pending_fits``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

from features.btyd import BtydConfig, PurchaseSummary
from features.families.btyd import fit_btyd_summary
from features.scratch import Scratch, scratch_dir


class Spool:
    """One cutoff's purchase summaries, part after part, appended to files: the rows of the
    customers with an order (the only ones a fit uses), in the parts' order, so the whole base's
    summaries are never held in memory (at 10M customers and two cutoffs they were 0.6 GB, and a
    copy more while joined and sent to a worker); ``fit_spooled`` maps the files."""

    FIELDS = ("frequency", "recency", "age", "monetary")

    def __init__(self, folder: Path, name: str):
        self.paths = tuple(folder / f"{name}-{f}.f8" for f in self.FIELDS)
        self._files = [p.open("wb") for p in self.paths]
        self.nbytes = 0

    def add(self, summary: PurchaseSummary) -> None:
        has = np.isfinite(summary.frequency)
        for file, name in zip(self._files, self.FIELDS, strict=True):
            np.ascontiguousarray(getattr(summary, name)[has], dtype=np.float64).tofile(file)
        self.nbytes += 8 * len(self.FIELDS) * int(has.sum())

    def close(self) -> tuple[Path, ...]:
        for file in self._files:
            file.close()
        return self.paths


class Spools(dict):
    """A spool per cutoff in a scratch folder in ``folder`` (``features.scratch``; default:
    ``TMPDIR``), removed on exit."""

    def __init__(self, cutoffs: list[pd.Timestamp], folder: str | Path | None = None):
        super().__init__()
        self._cutoffs, self._parent, self._folder = cutoffs, folder, None

    def __enter__(self) -> Spools:
        if self._cutoffs:
            self._folder = scratch_dir(self._parent)
            for i, c in enumerate(self._cutoffs):
                self[c] = Spool(Path(self._folder.name), f"cutoff{i}")
        return self

    def detach(self) -> Scratch:
        """The scratch folder, now the caller's to remove (the spools closed)."""
        folder, self._folder = self._folder, None
        return folder

    def __exit__(self, *exc) -> None:
        try:
            for spool in self.values():
                with contextlib.suppress(OSError):  # a full disk: the first error is the one
                    spool.close()
        finally:
            if self._folder is not None:
                self._folder.cleanup()


def _mapped(path: Path) -> np.ndarray:
    return (np.asarray(np.memmap(path, dtype=np.float64, mode="r")) if path.stat().st_size
            else np.empty(0))


def fit_spooled(job: tuple[tuple[Path, ...], BtydConfig]) -> dict:
    """One cutoff's fit (``fit_btyd_summary``) from its spool's files, mapped, not read."""
    paths, config = job
    return fit_btyd_summary(PurchaseSummary(*(_mapped(p) for p in paths)), config).as_dict()
