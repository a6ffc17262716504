"""The first pass's BTYD fits: each part's purchase summaries spooled to files, then fitted."""

from __future__ import annotations

import tempfile

import pandas as pd

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
