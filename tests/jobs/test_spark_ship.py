"""The code shipped to Spark's executors: one zip per content, made whole even when several
threads of one driver ship at once."""

from __future__ import annotations

import threading
import zipfile

from jobs import spark_ship


def test_threads_shipping_at_once_each_get_a_whole_zip():
    results, errors = [], []
    start = threading.Barrier(4)

    def ship():
        start.wait()
        try:
            results.append(spark_ship.code_zip())
        except Exception as exc:  # noqa: BLE001 - collected and shown by the assert
            errors.append(exc)

    threads = [threading.Thread(target=ship) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(results)) == 1, (errors, results)
    with zipfile.ZipFile(results[0]) as z:
        assert z.testzip() is None
        assert "features/scratch.py" in z.namelist()
    assert not list(results[0].parent.glob("*.tmp")), "a temporary zip was left behind"
