"""A separate process that imports generated indicators, for crash and concurrency tests.

    python -m tests.import_worker FIRST COUNT [--pause SECONDS] [--wait-for FILE]

Prints "batch" after each stored batch (then pauses, holding the transaction open), and
"done" at the end. The node comes from LIAISON_HOME and LIAISON_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from liaison.importer import import_objects
from liaison.node import open_node
from liaison.settings import Settings
from liaison.store import objects as store_objects
from tests.stix_factory import indicator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("first", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--wait-for", type=Path)
    args = parser.parse_args()

    insert = store_objects._insert_batch

    def reporting_insert(connection, rows):
        insert(connection, rows)
        print("batch", flush=True)
        time.sleep(args.pause)

    store_objects._insert_batch = reporting_insert
    node = open_node(Settings.from_env())
    batch = [indicator(n) for n in range(args.first, args.first + args.count)]
    if args.wait_for is not None:
        while not args.wait_for.exists():
            time.sleep(0.01)
    report = import_objects(node.engine, batch, workers=1)
    print("done", report.count("added"), flush=True)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
