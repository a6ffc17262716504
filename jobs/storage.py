"""Where a job reads and writes: a local path or a URI (``file://``, ``s3a://``, ``hdfs://``, ...).

Local paths and ``file://`` URIs are opened directly; any other scheme goes through pyarrow's
filesystems (``FileSystem.from_uri``), so the driver's code is the same for every store; Spark is
given the URI as it is (``spark_uri``). Spark spells S3 ``s3a://``, pyarrow ``s3://``: the
driver maps one to the other.

Outputs stay atomic on every store: a job writes its files into a local folder
(``staged_output``), then ``publish`` copies each beside its destination under a hidden temporary
name and moves it into place: the output first, its manifest last, as on a local disk (so a
manifest never names an output that was not written; a kill between the two leaves the new output
beside the old manifest, whose output hash no longer matches). On a local disk the move is a
rename; on an object store it is a copy and a delete, and the object appears whole or not at all.

Tested here: local paths, ``file://`` URIs, and the remote code path on pyarrow's in-memory
``mock://`` filesystem. Not tested (no such service on the test machine): ``s3a://``,
``hdfs://``, ``gs://``, ``abfs://``; they need pyarrow's S3/HDFS/GCS support and credentials on
the driver, and Spark's connectors (hadoop-aws, ...) on the cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.fs as pafs

from features.errors import BadInput

ARROW_SCHEMES = {"s3a": "s3", "s3n": "s3"}  # Spark's (Hadoop's) name -> pyarrow's name
_FILESYSTEMS: dict[str, pafs.FileSystem] = {}  # one client per store and process


class StorageError(BadInput):
    """A location that cannot be opened, read or written (a one-line message)."""


@dataclass(frozen=True)
class Location:
    uri: str  # as the user gave it (a path or a URI)
    fs: pafs.FileSystem
    path: str  # the path inside ``fs``
    local: Path | None  # set when the location is on this machine's file system

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()

    def sibling(self, name: str) -> Location:
        """Another file in the same folder."""
        parent = self.path.rstrip("/").rsplit("/", 1)[0]
        uri = self.uri.rstrip("/").rsplit("/", 1)[0] + "/" + name
        return Location(uri, self.fs, f"{parent}/{name}",
                        None if self.local is None else self.local.with_name(name))

    def child(self, name: str) -> Location:
        return Location(self.uri.rstrip("/") + "/" + name, self.fs,
                        self.path.rstrip("/") + "/" + name,
                        None if self.local is None else self.local / name)

    def exists(self) -> bool:
        return self.fs.get_file_info(self.path).type != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        return self.fs.get_file_info(self.path).type == pafs.FileType.Directory

    def spark_uri(self) -> str:
        """What Spark reads or writes: ``file://`` + the absolute path, or the URI unchanged."""
        return self.local.as_uri() if self.local is not None else self.uri

    def __str__(self) -> str:
        return self.uri


def location(where: str | Path | Location) -> Location:
    """A path or URI as a :class:`Location`; a URI that cannot be opened raises StorageError."""
    if isinstance(where, Location):
        return where
    text = str(where)
    parsed = urlparse(text)
    if isinstance(where, Path) or len(parsed.scheme) <= 1:  # no scheme (or a Windows drive)
        local = Path(text).expanduser().absolute()
        return Location(text, pafs.LocalFileSystem(), local.as_posix(), local)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise StorageError(f"{text}: a file:// URI names no host (file:///abs/path)")
        local = Path(unquote(parsed.path))
        return Location(text, pafs.LocalFileSystem(), local.as_posix(), local)
    scheme = ARROW_SCHEMES.get(parsed.scheme, parsed.scheme)
    arrow_uri = scheme + text[len(parsed.scheme):]
    try:
        fs, path = _filesystem(scheme, arrow_uri, parsed)
    except Exception as exc:  # noqa: BLE001 - any failure to open a store is one line to the user
        raise StorageError(f"cannot open {text}: {_first_line(exc)}") from exc
    return Location(text, fs, path, None)


def _filesystem(scheme: str, arrow_uri: str, parsed) -> tuple[pafs.FileSystem, str]:
    """One client per store (creating an S3 client costs a round trip), reused when the path
    rule (bucket/key, or the path for HDFS) gives what pyarrow would."""
    rule = parsed.path if scheme in ("hdfs", "viewfs") else (parsed.netloc + parsed.path).lstrip("/")
    key = f"{scheme}://{parsed.netloc}"
    if key in _FILESYSTEMS:
        return _FILESYSTEMS[key], rule
    fs, path = pafs.FileSystem.from_uri(arrow_uri)
    if path == rule:
        _FILESYSTEMS[key] = fs
    return fs, path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_writable(out: Location) -> None:
    """Fail at the start of a job, not its end, when the output's folder cannot be written."""
    probe = out.sibling(f".{out.name}.{os.getpid()}.probe.tmp")
    try:
        out.fs.create_dir(probe.path.rsplit("/", 1)[0], recursive=True)
        with out.fs.open_output_stream(probe.path) as f:
            f.write(b"")
        out.fs.delete_file(probe.path)
    except Exception as exc:  # noqa: BLE001
        raise StorageError(f"cannot write to {out.uri}: {_first_line(exc)}") from exc


def publish(local_file: Path, dest: Location) -> None:
    """Copy ``local_file`` to ``dest`` under a temporary name, then move it into place."""
    tmp = dest.sibling(f".{dest.name}.{os.getpid()}.upload.tmp")
    try:
        dest.fs.create_dir(tmp.path.rsplit("/", 1)[0], recursive=True)
        with open(local_file, "rb") as src, dest.fs.open_output_stream(tmp.path) as out:
            shutil.copyfileobj(src, out, 1 << 22)
        dest.fs.move(tmp.path, dest.path)
    except Exception as exc:
        with contextlib.suppress(Exception):
            dest.fs.delete_file(tmp.path)
        raise StorageError(f"cannot write {dest.uri}: {_first_line(exc)}") from exc


def output_files(out: Location) -> list[Location]:
    """The files a batch job writes beside ``out``: quarantine, manifest, then the output itself;
    ``staged_output`` publishes the output first and the others after it, the manifest last."""
    stem = Path(out.name).stem
    return [out.sibling(f"{stem}.quarantine{out.suffix}"), out.sibling(f"{stem}.manifest.json"),
            out]


@contextlib.contextmanager
def staged_output(out: Location, also: list[Location] | None = None):
    """A local path to write ``out`` (and the files ``also``) to, published when the block ends.

    A local destination is its own stage (the writers there are already atomic and commit the
    output before the manifest). Otherwise the files go to a local temporary folder and are
    published when the block ends: ``out`` first, then ``also`` in order (the manifest last); a
    failure inside the block publishes nothing."""
    if out.local is not None:
        yield out.local
        return
    with tempfile.TemporaryDirectory(prefix="churn-out-") as tmp:
        yield Path(tmp) / out.name
        for dest in [out, *(also or [])]:
            if (Path(tmp) / dest.name).exists():
                publish(Path(tmp) / dest.name, dest)


@contextlib.contextmanager
def local_copy(src: Location):
    """A local path holding ``src`` (a file or a folder): itself when local, else a download."""
    if not src.exists():
        raise FileNotFoundError(f"{src.uri} does not exist")
    if src.local is not None:
        yield src.local
        return
    with tempfile.TemporaryDirectory(prefix="churn-in-") as tmp:
        target = Path(tmp) / src.name
        try:
            if src.is_dir():
                target.mkdir()
                pafs.copy_files(src.path, str(target), source_filesystem=src.fs,
                                destination_filesystem=pafs.LocalFileSystem())
            else:
                with src.fs.open_input_stream(src.path) as f, open(target, "wb") as out:
                    shutil.copyfileobj(f, out, 1 << 22)
        except Exception as exc:  # noqa: BLE001
            raise StorageError(f"cannot read {src.uri}: {_first_line(exc)}") from exc
        yield target


def list_files(folder: Location) -> list[Location]:
    """The files directly in ``folder`` (sorted by name)."""
    infos = folder.fs.get_file_info(pafs.FileSelector(folder.path, allow_not_found=True))
    return sorted((folder.child(i.base_name) for i in infos if i.type == pafs.FileType.File),
                  key=lambda loc: loc.name)


def remove_tree(folder: Location) -> None:
    with contextlib.suppress(Exception):
        if folder.local is not None:
            shutil.rmtree(folder.local, ignore_errors=True)
        elif folder.exists():
            folder.fs.delete_dir(folder.path)
