"""A separate process that appends to the ledger, for concurrency and crash tests.

    python -m tests.ledger.append_worker URL TAG BATCHES SIZE [--wait-for FILE] [--hold-at N]

Appends BATCHES batches of SIZE entries, each batch in a write transaction of its own, each
entry naming TAG, its batch and its place in the batch. Prints "committed N" once the N-th
batch (counting from 1) has committed, and "done" at the end. With --wait-for, it first
prints "ready" once connected, then waits for FILE to exist. With --hold-at N, the N-th
batch is appended and then, before its commit, the process prints "holding" and sleeps: the
test kills it there.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from liaison.ledger.log import Entry, append
from liaison.store.engine import create_engine, write_transaction

KIND = "consent"  # any kind with no record outside the ledger


def batch_entries(tag: str, batch: int, size: int) -> list[Entry]:
    return [Entry(KIND, {"worker": tag, "batch": batch, "item": item}) for item in range(size)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("tag")
    parser.add_argument("batches", type=int)
    parser.add_argument("size", type=int)
    parser.add_argument("--wait-for", type=Path)
    parser.add_argument("--hold-at", type=int)
    args = parser.parse_args()

    engine = create_engine(args.url)
    if args.wait_for is not None:
        with engine.connect():
            print("ready", flush=True)
        while not args.wait_for.exists():
            time.sleep(0.005)
    for batch in range(1, args.batches + 1):
        with write_transaction(engine) as connection:
            append(connection, batch_entries(args.tag, batch, args.size))
            if batch == args.hold_at:
                print("holding", flush=True)
                time.sleep(600)
        print("committed", batch, flush=True)
    print("done", flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
