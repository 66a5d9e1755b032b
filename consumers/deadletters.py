"""``harmwatch dead-letters list|show|replay``: look at what a stage refused, and send it back.

A dead letter keeps the original message whole (inline as base64, or in the blob store
when it is too large for that), so once the cause is fixed — a bug in a stage, a message
limit raised, a schema change rolled out — the operator replays it to the topic it came
from, under its original key. The stages' writes are idempotent, so replaying a message
that did get through after all stores nothing twice.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when used: `harmwatch --help` loads every command module
    from harmwatch.contract import DeadLetter
    from harmwatch.settings import Settings

PROGRESS_EVERY = 1000


@dataclass(frozen=True)
class StoredLetter:
    """A dead letter and where it sits on the dead-letter topic."""

    partition: int
    offset: int
    letter: DeadLetter

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"


def read_letters(settings: Settings) -> Iterator[StoredLetter]:
    """Every letter on the dead-letter topic, oldest first, up to its end when called."""
    from kafka import KafkaConsumer, TopicPartition

    from harmwatch.contract import DeadLetter

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                             enable_auto_commit=False, group_id=None,
                             client_id="harmwatch-dead-letters", consumer_timeout_ms=10_000)
    try:
        partitions = consumer.partitions_for_topic(settings.topic_dead) or set()
        assigned = [TopicPartition(settings.topic_dead, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        remaining = {tp for tp in assigned if ends[tp] > 0}
        while remaining:
            polled = consumer.poll(timeout_ms=5000)
            if not polled:
                raise RuntimeError(f"{settings.topic_dead}: no progress reading up to the "
                                   f"end offsets; is the broker at {settings.kafka_bootstrap} up?")
            for tp, records in polled.items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield StoredLetter(record.partition, record.offset,
                                           DeadLetter.model_validate_json(record.value))
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()


def original_bytes(letter: DeadLetter, settings: Settings) -> bytes:
    """The refused message exactly as it was, from the letter or from the blob store."""
    if letter.original_blob_ref:
        from harmwatch.blobstore import get_blob_store

        return get_blob_store(settings).get(letter.original_blob_ref)
    return base64.b64decode(letter.original_base64)


def select(letters: Iterator[StoredLetter], positions: set[str],
           stage: str | None) -> Iterator[StoredLetter]:
    for stored in letters:
        if positions and stored.position not in positions and str(stored.offset) not in positions:
            continue
        if stage and stored.letter.stage != stage:
            continue
        yield stored


def replay(settings: Settings, letters: Iterator[StoredLetter]) -> int:
    """Publish each letter's original to its source topic; returns how many were sent."""
    from harmwatch.kafka import make_producer

    producer = make_producer(settings, "harmwatch-dead-letters-replay")
    sent = 0
    try:
        for stored in letters:
            letter = stored.letter
            producer.send(letter.source_topic, key=letter.key,
                          value=original_bytes(letter, settings)).get(timeout=60)
            sent += 1
            if sent % PROGRESS_EVERY == 0:
                print(f"  {sent:,} replayed", file=sys.stderr, flush=True)
    finally:
        producer.close(timeout=30)
    return sent


# --- command line ------------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dead-letters", help="list, show or replay the messages the stages refused")
    commands = parser.add_subparsers(dest="dead_command", required=True)
    listing = commands.add_parser("list", help="one line per letter: where, when, stage, why")
    listing.add_argument("--stage", help="only letters from this stage (analyzer, indexer)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=_list)
    show = commands.add_parser("show", help="one letter whole, with its original message")
    show.add_argument("position", help="PARTITION:OFFSET (or OFFSET) as `list` prints it")
    show.set_defaults(func=_show)
    again = commands.add_parser(
        "replay", help="send originals back to the topic they came from, under their key")
    again.add_argument("positions", nargs="*", metavar="POSITION",
                       help="PARTITION:OFFSET (or OFFSET) of the letters to replay")
    again.add_argument("--stage", help="only letters from this stage")
    again.add_argument("--all", action="store_true",
                       help="every letter (with --stage: every letter of that stage)")
    again.set_defaults(func=_replay)


def _list(args: argparse.Namespace) -> int:
    from harmwatch.settings import get_settings

    count = 0
    for stored in select(read_letters(get_settings()), set(), args.stage):
        count += 1
        letter = stored.letter
        if args.json:
            print(json.dumps({"position": stored.position, **letter.model_dump(mode="json",
                              exclude={"original_base64"})}, ensure_ascii=False))
        else:
            error = letter.error.splitlines()[0][:120] if letter.error else ""
            print(f"{stored.position:>10}  {letter.failed_at:%Y-%m-%d %H:%M:%S}  "
                  f"{letter.stage:<9} {letter.key or '-'}  {letter.original_size or 0:,} B  "
                  f"{error}")
    if not args.json:
        print(f"{count:,} dead letters", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    from harmwatch.settings import get_settings

    settings = get_settings()
    for stored in select(read_letters(settings), {args.position}, None):
        print(json.dumps({"position": stored.position,
                          **stored.letter.model_dump(mode="json", exclude={"original_base64"})},
                         ensure_ascii=False, indent=1))
        original = original_bytes(stored.letter, settings)
        print("--- original message ---")
        print(original.decode("utf-8", "backslashreplace"))
        return 0
    print(f"harmwatch dead-letters: no letter at {args.position} on {settings.topic_dead}; "
          f"`harmwatch dead-letters list` shows the positions", file=sys.stderr)
    return 1


def _replay(args: argparse.Namespace) -> int:
    from harmwatch.settings import get_settings

    if not args.positions and not args.all:
        print("harmwatch dead-letters replay: name the letters (PARTITION:OFFSET ...) or pass "
              "--all (with --stage to narrow it)", file=sys.stderr)
        return 2
    settings = get_settings()
    chosen = select(read_letters(settings), set(args.positions), args.stage)
    sent = replay(settings, chosen)
    print(f"{sent:,} replayed to their source topics; the stages pick them up as new messages")
    return 0 if sent or args.all else 1
