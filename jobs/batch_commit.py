"""Committing a batch job's files: the old output and manifest, or the new ones, never a mix.

Output, quarantine and manifest are first written whole under temporary names, with a "pending"
manifest that names them. ``commit`` then renames the output into place, then the quarantine,
then writes the manifest. A kill before the output's rename leaves the previous pair untouched
(the pending manifest does not match the output: ``recover`` drops it); a kill after it is
rolled forward by ``recover`` (the pending manifest matches the output: the renames are
finished). The next job and every reader (``read_committed``) recover first, so none sees a
manifest naming a model that did not write the output beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

from features.io import write_atomic

log = logging.getLogger(__name__)

PAUSE_ENV = "CHURN_BATCH_PAUSE_AT"  # a test hook: pause at a named commit step (see _checkpoint)


def fingerprint_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def companion_paths(out: Path) -> tuple[Path, Path, Path]:
    """The quarantine, manifest and pending-manifest paths of an output."""
    out = Path(out)
    return (out.with_name(out.stem + ".quarantine" + out.suffix),
            out.with_name(out.stem + ".manifest.json"),
            out.with_name(f".{out.stem}.manifest.json.pending"))


@contextlib.contextmanager
def writing_in(folder: Path):
    """I/O errors raised inside name ``folder`` when they name no file (pyarrow's do not), so
    that a full disk says where it is full."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or isinstance(exc, FileNotFoundError):
            raise
        raise OSError(exc.errno, exc.strerror or " ".join(str(exc).split()), str(folder)) from exc


def _checkpoint(step: str) -> None:
    """Pause at ``step`` when ``CHURN_BATCH_PAUSE_AT`` names it, so that a test can kill the job
    there (``CHURN_BATCH_PAUSE_SECONDS``, default 600). Does nothing otherwise."""
    if os.environ.get(PAUSE_ENV) == step:
        log.warning("paused at %s", step)
        time.sleep(float(os.environ.get("CHURN_BATCH_PAUSE_SECONDS", "600")))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1))
    _fsync(path)


def commit(out: Path, output_tmp: Path, quarantine_tmp: Path, manifest: dict) -> None:
    """Put the written files in place: output first, quarantine, manifest last. On a failure
    before the output's rename nothing changed (the caller removes its temporary files); after
    it, the pending manifest and the staged quarantine stay for ``recover``."""
    qpath, mpath, pending = companion_paths(out)
    replaced = False
    try:
        for path in (output_tmp, quarantine_tmp):
            _fsync(path)
        staged = {"output": output_tmp.name, "quarantine": quarantine_tmp.name}
        write_atomic(pending, lambda tmp: _write_json(tmp, {**manifest, "staged": staged}))
        _checkpoint("staged")
        os.replace(output_tmp, out)
        replaced = True
        _checkpoint("output")
        os.replace(quarantine_tmp, qpath)
        write_atomic(mpath, lambda tmp: _write_json(tmp, manifest))
        pending.unlink(missing_ok=True)
    finally:
        if not replaced:
            pending.unlink(missing_ok=True)


def recover(out: Path) -> None:
    """Finish or drop a commit that a killed job left half done (see the module's docstring)."""
    out = Path(out)
    qpath, mpath, pending = companion_paths(out)
    if not pending.exists():
        return
    try:
        manifest = json.loads(pending.read_text())
        staged = {k: out.with_name(v) for k, v in manifest.pop("staged").items()}
    except (ValueError, KeyError, AttributeError):
        pending.unlink(missing_ok=True)
        return
    if out.exists() and fingerprint_file(out) == manifest.get("output_sha256"):
        if staged.get("quarantine") and staged["quarantine"].exists():
            os.replace(staged["quarantine"], qpath)
        write_atomic(mpath, lambda tmp: _write_json(tmp, manifest))
        log.warning("%s: finished the commit of a job killed half-way (model %s version %s)",
                    out.name, manifest.get("model_name"), manifest.get("model_version"))
    for path in staged.values():
        path.unlink(missing_ok=True)
    pending.unlink(missing_ok=True)


def clean_stale(out: Path) -> None:
    """Recover a half-done commit, then remove what killed jobs left behind: temporary files,
    and the Spark engine's stage (a folder, ``.{out}.spark.tmp``)."""
    recover(out)
    for stale in Path(out).parent.glob(f".{Path(out).name}.*.tmp"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def read_committed(out: Path) -> dict | None:
    """The manifest of the committed output ``out``, or None when there is no committed pair
    (no output, no manifest, or a manifest that does not describe the output beside it)."""
    out = Path(out)
    recover(out)
    _, mpath, _ = companion_paths(out)
    if not (out.exists() and mpath.exists()):
        return None
    manifest = json.loads(mpath.read_text())
    if manifest.get("output_sha256") != fingerprint_file(out):
        return None
    return manifest
