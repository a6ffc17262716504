"""The BTYD fits made while the build's workers already read their parts: the same fits as the
scan makes, handed to the workers through a file, and a failed fit that stops the build with its
own error (no worker left waiting, nothing written)."""

from __future__ import annotations

import pandas as pd
import pytest

from features import btyd_spool
from features.config import FeatureConfig, LabelConfig
from features.pending_fits import FitsFailed, PendingFits, await_fits
from features.sample import SampleSpec, write_partitioned
from features.scan import Unchecked, scan_source
from features.scratch import scratch_dir
from features.stream import build_to_parquet

CUTOFFS = [pd.Timestamp("2024-10-01"), pd.Timestamp("2025-01-01")]


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("pending") / "parts"
    write_partitioned(SampleSpec(customers=900, months=15, seed=7, block=300), root)
    return root


def test_deferred_fits_are_the_scans_fits_handed_over_by_file(parts, tmp_path):
    made = scan_source(parts, CUTOFFS, FeatureConfig(), checks=False)
    spool = tmp_path / "spool"
    spool.mkdir()
    deferred = scan_source(parts, CUTOFFS, FeatureConfig(), checks=False, spool_dir=spool,
                           defer_fits=True)
    assert made.pending_fits is None and len(made.config.btyd_fits) == len(CUTOFFS)
    assert deferred.pending_fits is not None and not deferred.config.btyd_fits
    assert list(spool.iterdir()), "the purchase summaries' spool went before the fit"
    at = tmp_path / "fits.pkl"
    deferred.pending_fits.start(at)
    assert await_fits(at, deferred.config) == made.config  # what a worker builds with
    assert deferred.pending_fits.fits() == made.config.btyd_fits
    deferred.pending_fits.cleanup()
    assert list(spool.iterdir()) == []


def test_a_waiting_worker_stops_on_a_failed_fit_or_a_build_gone(tmp_path):
    def fail():
        raise ValueError("the likelihood did not converge")

    pending = PendingFits(fail, scratch_dir(tmp_path))
    at = tmp_path / "fits.pkl"
    pending.start(at)
    with pytest.raises(FitsFailed, match="ValueError: the likelihood did not converge"):
        await_fits(at, FeatureConfig())
    with pytest.raises(ValueError, match="did not converge"):  # the caller raises the fit's own
        pending.fits()
    pending.cleanup()
    with pytest.raises(FitsFailed, match="gone"):  # the caller stopped and removed the folder
        await_fits(tmp_path / "removed" / "fits.pkl", FeatureConfig())


def test_a_failed_fit_stops_the_parallel_build_with_its_own_error(parts, tmp_path,
                                                                  monkeypatch):
    """The workers wait for fits that never come: the build raises the fit's error (as the
    build without workers does) instead of hanging, and leaves nothing beside the output."""
    def fail(job):
        raise ValueError("the likelihood did not converge")

    monkeypatch.setattr(btyd_spool, "fit_spooled", fail)  # a real non-convergence needs odd data
    out = tmp_path / "out" / "features.parquet"
    out.parent.mkdir()
    for workers in (1, 2):
        with pytest.raises(Unchecked, match="the BTYD fits: ValueError: the likelihood"):
            build_to_parquet(parts, CUTOFFS, FeatureConfig(), LabelConfig(), out,
                             workers=workers)
        assert list(out.parent.iterdir()) == [], workers


def test_fits_of_many_customers_are_made_before_the_build_pass(parts, monkeypatch):
    """The fit's memory grows with the customers: beyond ``OVERLAP_UP_TO`` bytes of summaries it
    is not held beside the workers' parts (made in the scan, as without workers)."""
    import features.pending_fits as pending_module

    small = scan_source(parts, CUTOFFS, FeatureConfig(), checks=False, defer_fits=True)
    assert small.pending_fits is not None
    small.pending_fits.cleanup()
    monkeypatch.setattr(pending_module, "OVERLAP_UP_TO", 1000)  # bytes: a few customers
    large = scan_source(parts, CUTOFFS, FeatureConfig(), checks=False, defer_fits=True)
    assert large.pending_fits is None and len(large.config.btyd_fits) == len(CUTOFFS)


def test_a_build_whose_fits_cannot_be_handed_over_stops_with_that_error(parts, tmp_path,
                                                                        monkeypatch):
    """A full disk where neither the fits nor the failure marker can be written: the workers
    stop waiting (the thread removes their folder) and the build raises the disk's error instead
    of hanging, leaving nothing beside the output."""
    import errno
    import faulthandler

    import features.pending_fits as pending_module

    def full(path, content):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pending_module, "_publish", full)
    out = tmp_path / "out" / "features.parquet"
    out.parent.mkdir()
    faulthandler.dump_traceback_later(240, exit=True)  # a regression hangs: fail, not hang CI
    try:
        with pytest.raises(OSError, match="No space left"):
            build_to_parquet(parts, CUTOFFS, FeatureConfig(), LabelConfig(), out, workers=2)
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert list(out.parent.iterdir()) == []


def _owner(_):
    import features.parallel as parallel

    return parallel._OWNER, parallel.owner_gone()


def test_a_worker_whose_owner_ended_stops_waiting(tmp_path, monkeypatch):
    """A pool's workers know the process that started the pool (not whatever parent they have
    when a wait begins: after the owner died that is init), and stop waiting once it is gone."""
    import os

    import features.parallel as parallel
    from features.parallel import PartPool

    pool = PartPool(2)
    try:
        assert list(pool.map(_owner, [0, 1])) == [(os.getpid(), False)] * 2
    finally:
        pool.close()
    assert not parallel.owner_gone(), "outside a pool's worker nothing is watched"
    monkeypatch.setattr(parallel, "_OWNER", os.getppid() + 1_000_000)  # a parent that is gone
    (tmp_path / "handoff").mkdir()
    with pytest.raises(FitsFailed, match="process ended"):
        await_fits(tmp_path / "handoff" / "fits.pkl", FeatureConfig())


def test_fits_are_published_whole_and_never_into_a_removed_folder(tmp_path):
    """The fits file is the only thing left in the folder; once the caller removed the folder,
    publishing fails (the thread then gives up) instead of making the folder again."""
    from features.pending_fits import _publish

    at = tmp_path / "scratch" / "btyd-fits.pkl"
    at.parent.mkdir()
    _publish(at, {"fits": {"2024-10-01": 1}})
    assert [p.name for p in at.parent.iterdir()] == ["btyd-fits.pkl"]
    assert await_fits(at, FeatureConfig()).btyd_fits == {"2024-10-01": 1}
    at.unlink()
    at.parent.rmdir()
    with pytest.raises(FileNotFoundError):
        _publish(at, {"failed": "ValueError: no"})
    assert not at.parent.exists()
