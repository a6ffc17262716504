"""A local copy of the last model loaded from the registry, to start from when MLflow is down.

Layout under the cache folder, one sub-folder per (model URI, tracking server)::

    <cache>/<key>/v<version>-<run>/artifacts/{scorer,uplift}   the model, as downloaded
    <cache>/<key>/v<version>-<run>/model.json                  uri, name, version, run id, saved at
    <cache>/<key>/current.json                                 which copy is the latest

A copy is complete before ``current.json`` names it (the folder is renamed into place, the pointer
written atomically), so a process killed mid-save leaves the previous copy in use. Two worker
processes saving the same version share one folder. The latest two copies are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from features.io import write_atomic
from scoring.model_store import LoadedModel, download_scorer, read_scorer

log = logging.getLogger(__name__)

POINTER = "current.json"
KEEP = 2


class ModelCache:
    def __init__(self, root: str | Path, model_uri: str, tracking: str):
        self.root = Path(root)
        self.model_uri, self.tracking = model_uri, tracking
        key = hashlib.sha256(f"{model_uri}\n{tracking}".encode()).hexdigest()[:16]
        self.folder = self.root / key

    def fetch(self) -> LoadedModel:
        """Load the model from the registry and keep a copy (a failed copy is logged, not raised:
        the model is loaded either way)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.folder, prefix=".download-") as tmp:
            loaded, artifacts = download_scorer(self.model_uri, tmp, self.tracking)
            try:
                self._keep(loaded, artifacts)
            except OSError as exc:
                log.warning("could not keep a local copy of %s version %s in %s: %s",
                            loaded.name, loaded.version, self.folder, exc)
        return loaded

    def _keep(self, loaded: LoadedModel, artifacts: Path) -> None:
        name = f"v{loaded.version}-{(loaded.run_id or 'run')[:12]}"
        final = self.folder / name
        if not (final / "model.json").exists():
            # a folder published by one rename, not ``write_atomic`` (files only): a copy already
            # there (another process's) is kept, never replaced
            staging = Path(tempfile.mkdtemp(dir=self.folder, prefix=".copy-"))
            try:
                shutil.copytree(artifacts, staging / "artifacts")
                meta = {"model_uri": self.model_uri, "uri": loaded.uri, "name": loaded.name,
                        "version": loaded.version, "run_id": loaded.run_id,
                        "tracking": self.tracking,
                        "saved_at": datetime.now(UTC).isoformat(timespec="seconds")}
                (staging / "model.json").write_text(json.dumps(meta, indent=1))
                staging.rename(final)
            except OSError:
                if not (final / "model.json").exists():
                    raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)  # gone already once renamed
        write_atomic(self.folder / POINTER,
                     lambda tmp: tmp.write_text(json.dumps({"copy": name})))
        self._prune(keep=name)
        log.info("kept a local copy of %s version %s in %s", loaded.name, loaded.version, final)

    def _prune(self, keep: str) -> None:
        copies = sorted((p for p in self.folder.glob("v*") if p.is_dir() and p.name != keep),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        for old in copies[KEEP - 1:]:
            shutil.rmtree(old, ignore_errors=True)

    def latest(self) -> tuple[LoadedModel, str] | None:
        """The last copy kept and when it was saved, or None (no copy, or an unreadable one)."""
        try:
            name = json.loads((self.folder / POINTER).read_text())["copy"]
            meta = json.loads((self.folder / name / "model.json").read_text())
            loaded = read_scorer(self.folder / name / "artifacts", meta["uri"], meta["name"],
                                 meta["version"], meta["run_id"])
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - a damaged copy is no copy
            log.warning("the local model copy in %s is unreadable: %s", self.folder, exc)
            return None
        return loaded, meta["saved_at"]
