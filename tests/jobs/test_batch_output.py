"""The end of a batch job: the staged rows read back in order (the offers chosen over the whole
base: ``test_batch_offers``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jobs.batch_output import stage_batches


def test_staged_rows_are_read_back_in_part_order_without_quarantined_rows(tmp_path):
    """A folder of part files (the Spark engine's stage) is read in the parts' name order,
    quarantined rows left out; a single staged file as it was written."""
    folder = tmp_path / "stage"
    folder.mkdir()
    ids = [[f"c{i}" for i in range(k, k + n)] for k, n in ((0, 5), (5, 0), (5, 7))]
    for name, part in zip(("part-00002", "part-00000", "part-00001"), ids, strict=True):
        # written out of order: the file system's order is not the parts' order
        pd.DataFrame({"customer_id": pd.Series(part, dtype=object),
                      "churn_probability": np.linspace(0, 1, len(part)),
                      "quarantine_reason": ["x" if i.endswith("3") else "" for i in part]}
                     ).to_parquet(folder / f"{name}.parquet", index=False)
    got = pd.concat(stage_batches(folder, 4), ignore_index=True)
    want = [i for part in (ids[1], ids[2], ids[0]) for i in part if not i.endswith("3")]
    assert got["customer_id"].tolist() == want
    one = tmp_path / "one.parquet"
    pd.DataFrame({"customer_id": ids[2]}).to_parquet(one, index=False, row_group_size=3)
    batches = list(stage_batches(one, 4))
    assert max(len(b) for b in batches) <= 4
    assert pd.concat(batches)["customer_id"].tolist() == ids[2]
    assert list(stage_batches(tmp_path / "missing", 4)) == []
