"""Reading CRM sources (a folder of Parquet/CSV files or a DuckDB file) and writing outputs atomically.

A folder holds one file per table or, partitioned by customer, one folder of part files per table
(``features.partitions``): ``read_tables`` joins the parts (the whole source in memory); the
streamed feature build (``features.stream``) reads one part at a time instead.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from features.contract import TABLES, ContractError, Problem
from features.crm import CrmData
from features.errors import BadInput

log = logging.getLogger(__name__)

DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".db")
# a declared as-of date this long after the latest event is suspicious: labels would count the
# days in between as observed with no activity (churn), so it is logged as a warning
QUIET_BEFORE_AS_OF = pd.Timedelta(days=7)


def read_tables(source: str | Path) -> dict[str, pd.DataFrame]:
    """Read the contract's tables from ``source`` as they are (no checks, no typing)."""
    path = Path(source)
    if not path.exists():
        raise ContractError([Problem(str(path), None, "the data source does not exist")])
    if path.is_file():
        if path.suffix.lower() not in DUCKDB_SUFFIXES:
            raise ContractError([Problem(str(path), None, "a data source is a folder of Parquet/"
                                         "CSV files or a DuckDB file (.duckdb, .ddb, .db)")])
        return _read_duckdb(path)
    return _read_folder(path)


def _read_folder(folder: Path) -> dict[str, pd.DataFrame]:
    """One file per table, or (the partitioned layout, ``features.partitions``) a folder of part
    files per table, joined here in part order: the whole source in memory (the streamed build
    reads one part at a time instead)."""
    files: dict[str, list[Path]] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix.lower() in (".parquet", ".csv"):
            files.setdefault(f.stem, []).append(f)
        elif f.is_dir() and f.name in TABLES:
            files.setdefault(f.name, []).append(f)
    both = [name for name, fs in files.items() if name in TABLES and len(fs) > 1]
    if both:
        raise ContractError([Problem(n, None, "both a Parquet and a CSV file (or a file and a "
                                     "folder of parts); keep one") for n in both])
    ignored = sorted(set(files) - set(TABLES))
    if ignored:
        log.info("ignoring files that are not contract tables: %s", ", ".join(ignored))
    tables = {}
    for name in TABLES:
        if name in files:
            f = files[name][0]
            parts = ([p for p in sorted(f.iterdir()) if p.is_file() and not p.name.startswith(
                (".", "_")) and p.suffix.lower() in (".parquet", ".csv")] if f.is_dir() else [f])
            if not parts:
                continue
            try:
                frames = [pd.read_parquet(p) if p.suffix.lower() == ".parquet"
                          else pd.read_csv(p, low_memory=False) for p in parts]
            except Exception as exc:  # noqa: BLE001 - any reader failure is a contract problem
                raise ContractError([Problem(name, None, f"cannot read {f.name}: {exc}")]) from exc
            tables[name] = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
            log.info("read %s: %d rows", f.name, len(tables[name]))
    return tables


def _read_duckdb(path: Path) -> dict[str, pd.DataFrame]:
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ContractError([Problem(str(path), None, f"cannot open the DuckDB file: {exc}")]) from exc
    try:
        present = {r[0] for r in con.execute("select table_name from information_schema.tables")
                   .fetchall()}
        return {name: con.execute(f'select * from "{name}"').df() for name in TABLES
                if name in present}
    finally:
        con.close()


def load_crm(source: str | Path, as_of=None) -> CrmData:
    """Read and validate a source; raises :class:`ContractError` on any breach (a timestamp
    after ``as_of``, the moment the data was extracted, or after the current time is one)."""
    from features.contract import parse_as_of, validate

    as_of = parse_as_of(as_of)
    crm = CrmData.from_tables(validate(read_tables(source), as_of=as_of))
    if as_of is not None and as_of - crm.data_end > QUIET_BEFORE_AS_OF:
        log.warning("the latest event in %s is %s, %d days before its as-of date %s: labels count "
                    "those days as observed with no activity; check that the extract is complete",
                    source, crm.data_end, (as_of - crm.data_end).days, as_of)
    return crm


def write_atomic(path: str | Path, write: Callable[[Path], None], *, mkdir: bool = True) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it into place: the one
    way to write a file that must be whole or not there.

    A crash or an exception leaves no file under the final name (and removes the temporary one).
    The file gets the permissions a plain ``open(path, "w")`` would give (0o666 less the umask,
    applied by the kernel when the temporary file is created: the umask is never read or changed,
    which would race with other threads creating files). ``mkdir=False`` for a scratch folder that
    someone else may remove: writing there then fails instead of creating the folder again.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame as Parquet or CSV (by suffix), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise BadInput(f"output must end in .parquet or .csv, got {path.name}")
    if suffix == ".parquet":
        return write_atomic(path, lambda p: frame.to_parquet(p, index=False))
    return write_atomic(path, lambda p: frame.to_csv(p, index=False))


def read_frame(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, low_memory=False)
    raise BadInput(f"{path.name}: expected a .parquet or .csv file")
