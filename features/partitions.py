"""A source as partitions of its customers, read one at a time.

Two folder layouts are sources: one file per table (``orders.parquet``), or one folder per table
with part files (``orders/part-00000.parquet``, ...) in which a part holds the same customers in
every table: part ``k`` of ``orders`` has the orders of the customers in part ``k`` of
``customers`` (``churn data generate --partitioned`` writes it; Spark and Hive write the same
shape). A single-file source (or a DuckDB file) is one partition.

A partition's tables are checked against the contract on their own (``features.contract``); what
spans partitions (a customer id or an order id in two parts) is checked by
``cross_partition_problems`` with DuckDB over the files, out of core.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.coercion import CODED
from features.contract import TABLES, ContractError, Problem
from features.events import arrow_text
from features.io import DUCKDB_SUFFIXES, read_tables

log = logging.getLogger(__name__)

SUFFIXES = (".parquet", ".csv")


@dataclass(frozen=True)
class Partition:
    """One part of a source: the file of each table (``files``), or the whole source (``source``
    set: a single-file folder or a DuckDB file, read by ``read_tables``)."""

    name: str
    files: dict[str, Path]
    source: Path | None = None

    def read(self, columns: dict[str, list[str]] | None = None,
             categorical: dict[str, list[str]] | None = None) -> dict[str, pd.DataFrame]:
        """The raw tables of this part (no checks, no typing); ``columns`` limits what is read
        of some tables (Parquet parts only, the others are read whole; a column that a file
        lacks is left out). ``categorical``: text columns of Parquet parts read as pandas
        categoricals (their dictionary, not a string per row; other types are read as they are)."""
        if self.source is not None:
            return read_tables(self.source)
        tables = {}
        for name, f in self.files.items():
            try:
                if f.suffix.lower() == ".parquet":
                    wanted = (columns or {}).get(name)
                    coded = (categorical or {}).get(name)
                    options = {}
                    if wanted is not None or coded:
                        schema = pq.read_schema(f)
                        if wanted is not None:
                            wanted = [c for c in wanted if c in schema.names]
                        coded = [c for c in coded or () if c in schema.names and (
                            pa.types.is_string(t := schema.field(c).type)
                            or pa.types.is_large_string(t))]
                        if coded:
                            options["read_dictionary"] = coded
                    tables[name] = pd.read_parquet(f, columns=wanted, **options)
                    tables[name].attrs[CODED] = tuple(coded or ())
                else:
                    tables[name] = pd.read_csv(f, low_memory=False)
            except Exception as exc:  # noqa: BLE001 - any reader failure is a contract problem
                raise ContractError([Problem(name, None, f"cannot read {f}: {exc}")]) from exc
        return tables


def is_partitioned(source: str | Path) -> bool:
    """Whether ``source`` is a folder with a folder of part files per table."""
    path = Path(source)
    return path.is_dir() and any(_table_dirs(path))


def partitions(source: str | Path) -> list[Partition]:
    """The parts of ``source`` in order (a single-file source or a DuckDB file is one)."""
    path = Path(source)
    if not path.exists():
        raise ContractError([Problem(str(path), None, "the data source does not exist")])
    if path.is_file() or not any(_table_dirs(path)):
        if path.is_file() and path.suffix.lower() not in DUCKDB_SUFFIXES:
            raise ContractError([Problem(str(path), None, "a data source is a folder of Parquet/"
                                         "CSV files or a DuckDB file (.duckdb, .ddb, .db)")])
        return [Partition(path.name, {}, path)]
    dirs = dict(_table_dirs(path))
    flat = sorted(f.stem for f in path.iterdir()
                  if f.is_file() and f.suffix.lower() in SUFFIXES and f.stem in TABLES)
    problems = [Problem(n, None, f"both {n}/ (part files) and a single file: keep one layout")
                for n in flat if n in dirs]
    problems += [Problem(n, None, f"a single file while {', '.join(sorted(dirs))} are folders of "
                         "part files: use one layout for every table") for n in flat
                 if n not in dirs]
    parts = {name: {f.stem: f for f in _part_files(d)} for name, d in dirs.items()}
    names = sorted(set().union(*(p.keys() for p in parts.values())))
    for table, files in parts.items():
        missing = [n for n in names if n not in files]
        if missing:
            problems.append(Problem(table, None, f"{len(missing)} part files missing (every table "
                                    "has a part for each customer partition)",
                                    examples=", ".join(missing[:3])))
    if problems:
        raise ContractError(problems)
    log.info("%s: %d customer partitions of %s", path, len(names), ", ".join(sorted(dirs)))
    return [Partition(n, {t: parts[t][n] for t in TABLES if t in parts}) for n in names]


def _table_dirs(folder: Path):
    for d in sorted(folder.iterdir()):
        if d.is_dir() and d.name in TABLES and any(_part_files(d)):
            yield d.name, d


def _part_files(folder: Path) -> list[Path]:
    files = [f for f in sorted(folder.iterdir())
             if f.is_file() and f.suffix.lower() in SUFFIXES and not f.name.startswith((".", "_"))]
    kinds = {f.suffix.lower() for f in files}
    if len(kinds) > 1:
        raise ContractError([Problem(folder.name, None, "both Parquet and CSV part files; keep one")])
    return files


UNIQUE = (("customers", "customer_id", "signup_date"), ("orders", "order_id", "customer_id"))
# ids unique across the whole source, and the column shown beside them in examples


def id_range(frame: pd.DataFrame, column: str) -> tuple[str, str] | None:
    """The smallest and largest id of a checked part (ids are text), None when it has none."""
    if column not in frame.columns:
        return None
    values = frame[column]
    if _is_text(values):  # one Arrow pass (missing ids skipped), by text as below
        low, high = pc.min_max(arrow_text(values)).values()
        return None if not low.is_valid else (low.as_py(), high.as_py())
    values = values.dropna()
    if values.empty:
        return None
    if isinstance(values.dtype, pd.CategoricalDtype):  # ordered by text, not by its categories
        values = values.astype(str)
    return values.min(), values.max()


def _is_text(values: pd.Series) -> bool:
    """Text ids (pandas' text type), or a categorical of them (compared as text either way)."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    return isinstance(dtype, pd.StringDtype)


def overlapping(ranges: list[tuple[str, str] | None]) -> bool:
    """Whether two parts' id ranges overlap (else no id can be in two parts)."""
    spans = sorted(r for r in ranges if r is not None)
    return any(b[0] <= a[1] for a, b in zip(spans, spans[1:], strict=False))


def cross_partition_problems(parts: list[Partition], ranges: dict[str, list] | None = None,
                             examples: int = 3) -> list[Problem]:
    """Ids that must be unique across the whole source but appear in two partitions: a customer
    id in two parts of ``customers``, an order id in two parts of ``orders`` (each part is checked
    on its own by the contract). ``ranges`` (table -> each part's ``id_range``) skips a table
    whose parts' id ranges do not overlap (customers partitioned by id ranges, as the sample
    writes them); the others are checked with DuckDB over the files, spilling to disk past a
    memory limit."""
    if len(parts) < 2 or parts[0].source is not None:
        return []
    import duckdb

    problems = []
    con = duckdb.connect(config={"memory_limit": "1GB", "threads": 2})
    try:
        con.execute("set enable_progress_bar = false")
        for table, column, show in UNIQUE:
            if ranges is not None and not overlapping(ranges.get(table, [])):
                continue
            files = [str(p.files[table]) for p in parts if table in p.files]
            if not files:
                continue
            reader = "read_parquet" if files[0].endswith(".parquet") else "read_csv_auto"
            have = {r[0] for r in con.execute(f"describe select * from {reader}(?)",
                                              [files[:1]]).fetchall()}
            if column not in have:
                continue
            con.execute(f"""create or replace temp table dup as
                select id from (select cast("{column}" as varchar) as id, filename as f
                                from {reader}(?, filename = true) where "{column}" is not null)
                group by id having min(f) <> max(f)""", [files])
            count = con.execute("select count(*) from dup").fetchone()[0]
            if count:
                rows = con.execute(
                    f"""select cast("{column}" as varchar), filename, cast("{show}" as varchar)
                        from {reader}(?, filename = true)
                        where cast("{column}" as varchar) in (select id from dup order by id
                                                              limit {examples})
                        order by 1, 2""", [files]).fetchall()
                shown = "; ".join(f"{column}={r[0]!r}, {show}={r[2]!r} in {Path(r[1]).name}"
                                  for r in rows[: 2 * examples])
                problems.append(Problem(table, column, f"the same {column} in more than one "
                                        "partition (part file)", count, shown))
    finally:
        con.close()
    return problems
