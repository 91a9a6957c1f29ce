#!/usr/bin/env python3
"""Does a journal beside SQLite shorten the audit log's durable commit? (docs/audit-journal.md)

Usage: python3 docs/probes/sqlite_journal.py MODE [seconds=6] [checkpoint_ms=20] [dir=.]

Each batch is 35 entries of 700 bytes and their ~70 tree nodes (what the product's log commits
per batch at 64 writers), into the audit tables of crates/store/migrations/sqlite/0001_initial.sql,
WAL mode, while a second connection runs `PRAGMA wal_checkpoint(PASSIVE)` every checkpoint_ms
(0: no background checkpointer), as the product's checkpointer does every 20 ms.

- full: today's path, one `synchronous=FULL` commit per batch;
- journal: the batch's bytes written to a journal file and `fdatasync`ed, then the batch committed
  with `synchronous=NORMAL`, the writer's own automatic checkpoint left on;
- journal-noauto: the same with the writer's automatic checkpoint off (only the background
  checkpointer copies the WAL back).

Prints the journal's write+sync time, the commit time and their sum (p50, p99, max).
"""
import os
import sys
import threading
import time

import sqlite3

from sqlite_commit import batches, begin_batch, create_audit_tables

BATCH, BODY = 35, 700


def pct(v, p):
    return sorted(v)[min(len(v) - 1, int(p * len(v)))] * 1000


def checkpointer(path, interval, stop):
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA synchronous=FULL")
    while not stop.is_set():
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        time.sleep(interval)
    db.close()


def run(path, mode, seconds, checkpoint_ms):
    journaled = mode != "full"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=%s" % ("NORMAL" if journaled else "FULL"))
    if mode == "journal-noauto":
        db.execute("PRAGMA wal_autocheckpoint=0")
    create_audit_tables(db)
    stop = threading.Event()
    thread = None
    if checkpoint_ms > 0:
        thread = threading.Thread(target=checkpointer, args=(path, checkpoint_ms / 1000, stop))
        thread.start()
    journal = os.open(path + "-journal-probe", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    frame = os.urandom(BATCH * (BODY + 20) + 2 * BATCH * 41)
    syncs, commits, totals = [], [], []
    for entries, nodes in batches(BATCH, BODY, seconds):
        start = time.perf_counter()
        begin_batch(db, entries, nodes)
        before_sync = time.perf_counter()
        if journaled:
            os.write(journal, frame)
            os.fdatasync(journal)
        before_commit = time.perf_counter()
        db.execute("COMMIT")
        done = time.perf_counter()
        syncs.append(before_commit - before_sync)
        commits.append(done - before_commit)
        totals.append(done - start)
    stop.set()
    if thread:
        thread.join()
    os.close(journal)
    db.close()
    return syncs, commits, totals


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "full"
    if mode not in ("full", "journal", "journal-noauto"):
        sys.exit("mode must be full, journal or journal-noauto")
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 6.0
    checkpoint_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
    directory = sys.argv[4] if len(sys.argv) > 4 else "."
    path = os.path.join(directory, "sqlite_journal_probe.%d" % os.getpid())
    try:
        syncs, commits, totals = run(path, mode, seconds, checkpoint_ms)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal-probe"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
    print("%-14s checkpoints every %4.0f ms: %5d batches; journal sync p50 %.2f p99 %.2f; "
          "commit p50 %.2f p99 %.2f; total p50 %.2f p99 %.2f max %.1f ms"
          % (mode, checkpoint_ms, len(totals), pct(syncs, .5), pct(syncs, .99), pct(commits, .5),
             pct(commits, .99), pct(totals, .5), pct(totals, .99), max(totals) * 1000))


if __name__ == "__main__":
    main()
