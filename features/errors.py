"""The one base class of errors in what a user gave us (data, options, settings, files).

Every domain error about input (``ContractError``, ``StorageError``, ``BatchError``,
``TrainingInputError``, ``SettingsError``, ...) derives from :class:`BadInput`, so the edges can
tell the two kinds of failure apart: ``BadInput`` is the user's to fix (the command line exits 2,
the service answers 4xx), anything else is our bug (exit 70 with "please report it", a 500).

``BadInput`` is a ``ValueError`` so that code written against the old domain errors, which were
plain ``ValueError`` subclasses, keeps working.
"""

from __future__ import annotations


class BadInput(ValueError):
    """The input (a table, a column, an option, a setting, a file) is wrong; the message says
    what and where, with a few example values."""
