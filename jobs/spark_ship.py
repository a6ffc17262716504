"""What travels to the executors: the project's code and the model, each as one zip file.

Code: the packages the tasks import (features, scoring, jobs) are zipped from where this process
imports them and added with ``SparkContext.addPyFile``, so the executors run the driver's code
even when their Python has another version of the project, or none. Model: the scorer (and the
uplift models) saved to a folder, zipped, added with ``SparkContext.addFile`` (a cluster takes a
file, not a folder), then unpacked once per executor and loaded once per Python worker process,
keyed by the archive's content hash.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import secrets
import shutil
import tempfile
import zipfile
from pathlib import Path

from scoring.model_store import LoadedModel

log = logging.getLogger(__name__)

CODE_PACKAGES = ("features", "scoring", "jobs")
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed, so the same files give the same bytes and hash
_SHIPPED: dict[str, set[str]] = {}  # application id -> names already added
_WORKER_MODELS: dict[str, LoadedModel] = {}  # on an executor: archive hash -> loaded model
_SHIP_DIR: Path | None = None


def _ship_dir() -> Path:
    global _SHIP_DIR
    if _SHIP_DIR is None:
        _SHIP_DIR = Path(tempfile.mkdtemp(prefix="churn-spark-ship-"))
    return _SHIP_DIR


def _zip_folder(folders: dict[str, Path], target: Path) -> str:
    """Zip each folder under its archive name (sorted, fixed times); returns the sha256."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for arc_root, folder in sorted(folders.items()):
            for path in sorted(folder.rglob("*")):
                if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                    continue
                info = zipfile.ZipInfo(f"{arc_root}/{path.relative_to(folder).as_posix()}",
                                       _ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, path.read_bytes())
    return hashlib.sha256(target.read_bytes()).hexdigest()


def _add_once(sc, path: Path, py: bool) -> None:
    names = _SHIPPED.setdefault(sc.applicationId, set())
    if path.name in names:
        return
    if py:
        sc.addPyFile(str(path))
    else:
        sc.addFile(str(path))
    names.add(path.name)


def code_zip() -> Path:
    """The packages the tasks import, as this process imports them, in one zip named by hash."""
    folders = {name: Path(importlib.import_module(name).__file__).parent for name in CODE_PACKAGES}
    # not ``features.io.write_atomic``: the final name is the content's hash, known once written
    tmp = _ship_dir() / f"code.{secrets.token_hex(6)}.zip.tmp"  # two threads may ship at once
    digest = _zip_folder(folders, tmp)
    target = _ship_dir() / f"churn_code_{digest[:16]}.zip"
    os.replace(tmp, target)
    return target


def ship_code(sc) -> Path:
    """Add the project's code to every executor's Python path (once per application)."""
    path = code_zip()
    _add_once(sc, path, py=True)
    log.info("shipped %s to the executors", path.name)
    return path


def ship_model(sc, model: LoadedModel) -> tuple[str, str]:
    """Add the model as one archive; returns (file name, content hash) for ``worker_model``."""
    with tempfile.TemporaryDirectory(prefix="churn-model-") as tmp:
        folder = Path(tmp)
        model.scorer.save(folder / "scorer")
        if model.uplift is not None:
            model.uplift.save(folder / "uplift")
        digest = _zip_folder({"model": folder}, folder.parent / f"{folder.name}.zip")
        target = _ship_dir() / f"churn_model_{digest[:16]}.zip"
        os.replace(folder.parent / f"{folder.name}.zip", target)
    _add_once(sc, target, py=False)
    return target.name, digest


class _PerProcess:
    """Accumulator parameter: {"host:pid": count}, merged by adding the counts."""

    def zero(self, value):
        return {}

    def addInPlace(self, a, b):  # noqa: N802 - Spark's name
        for key, n in b.items():
            a[key] = a.get(key, 0) + n
        return a


def load_counter(sc):
    """An accumulator of the model loads per executor Python process (for ``worker_model``)."""
    return sc.accumulator({}, _PerProcess())


def worker_model(archive: str, digest: str, name: str | None, version: str | None,
                 loads=None) -> LoadedModel:
    """On an executor: the shipped model, unpacked once per executor and loaded once per Python
    process (``loads``, a ``load_counter``, counts the loads per process)."""
    if digest in _WORKER_MODELS:
        return _WORKER_MODELS[digest]
    from pyspark import SparkFiles

    from scoring.offers.uplift import UpliftModels
    from scoring.scorer import ChurnScorer

    folder = unpack(Path(SparkFiles.get(archive)), Path(SparkFiles.getRootDirectory()), digest)
    uplift_dir = folder / "uplift"
    uplift = UpliftModels.load(uplift_dir) if (uplift_dir / "uplift.json").exists() else None
    _WORKER_MODELS.clear()  # a long-lived executor keeps only the model in use
    _WORKER_MODELS[digest] = LoadedModel(ChurnScorer.load(folder / "scorer"), "", name, version,
                                         None, uplift)
    if loads is not None:
        import socket

        loads.add({f"{socket.gethostname()}:{os.getpid()}": 1})
    return _WORKER_MODELS[digest]


def unpack(archive: Path, root: Path, digest: str) -> Path:
    """The archive's ``model`` folder unpacked under ``root`` (once: a rename publishes it, so the
    Python workers of one executor share it; a concurrent loser keeps the winner's copy)."""
    target = root / f"churn-model-{digest[:16]}"
    if not target.exists():
        if hashlib.sha256(archive.read_bytes()).hexdigest() != digest:
            raise RuntimeError(f"{archive.name} does not match the driver's model (hash)")
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process published it first
            shutil.rmtree(tmp, ignore_errors=True)
    return target / "model"
