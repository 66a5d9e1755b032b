"""atheris fuzz target: the parsers that read attacker-reachable bytes.

* the message parser: what the analyzer and indexer do with a Kafka record's value
  (``posts.raw``, ``posts.flagged``) and what ``harmwatch dead-letters`` reads back;
* the hash-list readers (CSV, NCMEC CSV, VICS JSON, plain text), as ``harmwatch banks
  import`` and the admin upload open them.

Each may refuse its input only in its documented way — ``ValueError`` (pydantic's
``ValidationError`` is one) for a message, ``FormatError`` for a hash list; any other
exception, a hang or a memory blow-up is a finding. Run bounded by tests/test_fuzz.py;
by hand: ``python tests/fuzz/fuzz_parsers.py -max_total_time=60 CORPUS_DIR`` with a copy
of tests/fuzz/seeds/ as CORPUS_DIR.
"""

from __future__ import annotations

import contextlib
import io
import sys

import atheris

with atheris.instrument_imports(include=["consumers", "classifiers", "harmwatch"]):
    from classifiers.banks.formats import FORMATS, FormatError, read_entries
    from consumers.analyzer import parse_post
    from harmwatch.contract import AnalysedPost, DeadLetter

SIGNALS = ("md5", "sha1", "sha256", "pdq", "phash", None)


def fuzz_message(data: bytes) -> None:
    """The three message models on the same bytes: refused with ValueError or parsed."""
    for parse in (parse_post, AnalysedPost.model_validate_json, DeadLetter.model_validate_json):
        with contextlib.suppress(ValueError):
            parse(data)


def fuzz_hash_list(fmt: str, algorithm: str | None, data: bytes) -> None:
    """A hash list read to the end as the importer reads it (classifiers.banks.formats.open_list)."""
    binary = io.BytesIO(data)
    fp = binary if fmt == "vics" else io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    try:
        for entry in read_entries(fp, fmt, algorithm=algorithm):
            entry.normalised()
    except FormatError:
        pass


def test_one_input(data: bytes) -> None:
    """Byte 0 picks the parser (a hash-list format, or the messages), byte 1 the algorithm
    a plain text list is read with; the rest is the input (so seeds are easy to write)."""
    if len(data) < 2:
        return
    target, algorithm, rest = data[0] % (len(FORMATS) + 1), SIGNALS[data[1] % len(SIGNALS)], data[2:]
    if target == len(FORMATS):
        fuzz_message(rest)
    else:
        fuzz_hash_list(FORMATS[target], algorithm, rest)


def seed(target: str, content: bytes, algorithm: str | None = None) -> bytes:
    """A corpus file for ``target`` (a format name or "message"): how tests/fuzz/seeds/
    were written."""
    index = FORMATS.index(target) if target in FORMATS else len(FORMATS)
    return bytes([index, SIGNALS.index(algorithm)]) + content


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
