"""The first pass's BTYD fits: each part's purchase summaries spooled to files, then fitted."""

from __future__ import annotations

import tempfile

import pandas as pd
import pytest

from features.btyd import BtydConfig
from features.build import build_feature_set
from features.config import FeatureConfig, LabelConfig
from features.io import load_crm
from features.sample import SampleSpec, generate, write_partitioned, write_sample
from features.scan import scan_source

SPEC = SampleSpec(customers=1_500, months=15, seed=5, block=500)  # three partitions
CUTOFFS = [pd.Timestamp("2024-10-01"), pd.Timestamp("2025-01-01")]


def test_the_spooled_parts_fit_as_the_whole_base_does_and_leave_nothing(tmp_path, monkeypatch):
    """The parts' summaries, spooled to files part by part, give the fits of the whole base in
    memory, subsample included (fit_sample below the customers with an order); the spool's
    temporary files are gone afterwards."""
    write_partitioned(SPEC, tmp_path / "parts")
    write_sample(generate(SPEC), tmp_path / "single")
    config = FeatureConfig(btyd=BtydConfig(fit_sample=400))
    memory = build_feature_set(load_crm(tmp_path / "single"), CUTOFFS, config, LabelConfig())
    spool_root = tmp_path / "tmp"
    spool_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_root))
    scan = scan_source(tmp_path / "parts", CUTOFFS, config, checks=False)
    fits = scan.config.btyd_fits
    assert len(fits) == len(CUTOFFS) and all(f["bgnbd"] for f in fits.values()), fits
    assert fits == memory.config.btyd_fits
    assert list(spool_root.iterdir()) == [], "the spool's files were left behind"


def test_a_cutoff_given_twice_is_fitted_once(tmp_path):
    """Each cutoff's summaries are spooled once: a repeated cutoff must not feed every customer
    to its fit twice."""
    write_partitioned(SPEC, tmp_path / "parts")
    once = scan_source(tmp_path / "parts", CUTOFFS[:1], FeatureConfig(), checks=False)
    twice = scan_source(tmp_path / "parts", CUTOFFS[:1] * 2, FeatureConfig(), checks=False)
    assert once.config.btyd_fits and twice.config.btyd_fits == once.config.btyd_fits


def test_the_spool_sits_hidden_in_the_outputs_folder_and_goes_on_success_and_failure(
        tmp_path, monkeypatch):
    """The streamed build spools the purchase summaries in a hidden folder beside its output,
    not in TMPDIR (often in memory), and removes it whether the build succeeds or fails."""
    from features import btyd_spool
    from features.scan import Unchecked
    from features.stream import build_to_parquet

    write_partitioned(SPEC, tmp_path / "parts")
    system_tmp = tmp_path / "tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    out_dir = tmp_path / "out"
    seen: list[tuple] = []
    fit = btyd_spool.fit_spooled

    def spying_fit(job, fail=False):
        folder = job[0][0].parent
        seen.append((folder, folder.is_dir(), sorted(p.name for p in folder.iterdir())))
        if fail:
            raise RuntimeError("the fit failed")
        return fit(job)

    monkeypatch.setattr(btyd_spool, "fit_spooled", spying_fit)
    build_to_parquet(tmp_path / "parts", CUTOFFS[:1], FeatureConfig(), LabelConfig(),
                     out_dir / "features.parquet", workers=1)
    (folder, existed, files), = seen
    assert folder.parent == out_dir and folder.name.startswith("."), folder
    assert existed and files == sorted(f"cutoff0-{f}.f8" for f in btyd_spool.Spool.FIELDS)
    assert sorted(p.name for p in out_dir.iterdir()) == ["features.parquet"]
    assert list(system_tmp.iterdir()) == []

    monkeypatch.setattr(btyd_spool, "fit_spooled", lambda job: spying_fit(job, fail=True))
    failed_out = tmp_path / "failed" / "features.parquet"
    with pytest.raises(Unchecked, match="BTYD fits"):
        build_to_parquet(tmp_path / "parts", CUTOFFS[:1], FeatureConfig(), LabelConfig(),
                         failed_out, workers=1)
    assert seen[-1][0].parent == failed_out.parent and seen[-1][1]
    assert list(failed_out.parent.iterdir()) == [], "the spool or a half-written output was left"
    assert list(system_tmp.iterdir()) == []
