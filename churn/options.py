"""The fixed choices of the command line, as enums: ``--help`` lists them and a wrong value is a
usage error (exit 2) before anything runs.

Where the library already names the choices (a ``Literal`` in its settings), the enum is built
from it, so the two cannot drift apart.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import get_args

from features.config import Definition


class Engine(StrEnum):
    """Where a feature build or a batch scoring runs."""

    local = "local"
    spark = "spark"


class OutputFormat(StrEnum):
    """The file format of a table the command writes."""

    parquet = "parquet"
    csv = "csv"


class ReasonsFrom(StrEnum):
    """The lowest risk band that is given reasons."""

    low = "low"
    medium = "medium"
    high = "high"


class UnknownCategory(StrEnum):
    """What batch scoring does with a category the model never saw."""

    missing = "missing"
    quarantine = "quarantine"


ChurnDefinition = Enum("ChurnDefinition", {v: v for v in get_args(Definition)}, type=str)
ChurnDefinition.__doc__ = "noncontractual (no order in the horizon) or contractual (cancel_date in it)."


def value(choice: Enum | str | None) -> str | None:
    """The plain string of a choice (the library takes strings)."""
    return choice.value if isinstance(choice, Enum) else choice
