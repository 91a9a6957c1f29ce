#!/usr/bin/env python3
"""The SQLite engine's floor for the audit log's group commit, without sqlx or Rust in the way.

Usage: python3 docs/probes/sqlite_commit.py [default|nockpt|file] [seconds=10] [dir=.]

- default: the audit tables of crates/store/migrations/sqlite/0001_initial.sql (entries with the
  tenant index, WITHOUT ROWID nodes keyed by level and index), WAL, synchronous=FULL; each commit
  holds 150 entries of 400 bytes and their ~300 tree nodes, as the log commits them under load;
- nockpt: the same with WAL checkpoints off (is the tail the checkpoint's?);
- file: the same bytes appended to a plain file with one write and one fdatasync per batch.

Prints commits/s, entries/s and commit-time percentiles. `strace -f -c -e trace=pwrite64,fsync`
around a run counts the writes per commit (only the counts; strace slows everything down).
"""
import os
import sys
import time

import sqlite3

BATCH, BODY, LEVELS = 150, 400, 20


def pct(v, p):
    return sorted(v)[min(len(v) - 1, int(p * len(v)))] * 1000


def create_audit_tables(db):
    """The audit tables and index of crates/store/migrations/sqlite/0001_initial.sql."""
    db.execute("CREATE TABLE audit_entries (idx INTEGER PRIMARY KEY, tenant_id TEXT, entry BLOB NOT NULL)")
    db.execute("CREATE INDEX audit_entries_tenant ON audit_entries(tenant_id, idx)")
    db.execute("CREATE TABLE audit_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, "
               "PRIMARY KEY (level, idx)) WITHOUT ROWID")


def batches(batch, body_len, seconds):
    """Consecutive batches for `seconds`: (entry rows, node rows) of `batch` entries of `body_len` bytes."""
    body, digest = os.urandom(body_len), os.urandom(32)
    next_idx, per_level = 0, [0] * LEVELS
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        entries = [(next_idx + k, "tenant-%d" % (k % 10), body) for k in range(batch)]
        nodes = []
        for k in range(2 * batch):
            # Half the nodes are leaves, a quarter at level 1, and so on, as in a Merkle tree.
            level = min((k ^ (k + 1)).bit_length() - 1, LEVELS - 1)
            nodes.append((level, per_level[level], digest))
            per_level[level] += 1
        yield entries, nodes
        next_idx += batch


def begin_batch(db, entries, nodes):
    """Opens the write transaction and inserts the batch; the caller commits."""
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO audit_entries VALUES (?, ?, ?)", entries)
    db.executemany("INSERT INTO audit_nodes VALUES (?, ?, ?)", nodes)


def run_sqlite(path, seconds, checkpoints):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    if not checkpoints:
        db.execute("PRAGMA wal_autocheckpoint=0")
    create_audit_tables(db)
    commits = []
    for entries, nodes in batches(BATCH, BODY, seconds):
        start = time.perf_counter()
        begin_batch(db, entries, nodes)
        db.execute("COMMIT")
        commits.append(time.perf_counter() - start)
    return commits


def run_file(path, seconds):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    batch = os.urandom(BATCH * (BODY + 4) + 2 * BATCH * 41)
    commits = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        os.write(fd, batch)
        os.fdatasync(fd)
        commits.append(time.perf_counter() - start)
    os.close(fd)
    return commits


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "default"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    directory = sys.argv[3] if len(sys.argv) > 3 else "."
    path = os.path.join(directory, "sqlite_commit_probe.%d" % os.getpid())
    try:
        if mode == "file":
            commits = run_file(path, seconds)
        elif mode in ("default", "nockpt"):
            commits = run_sqlite(path, seconds, checkpoints=(mode == "default"))
        else:
            sys.exit("mode must be default, nockpt or file")
    finally:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
    print("%s: %d commits of %d entries, %.0f entries/s; commit p50 %.2f ms, p99 %.2f ms, max %.2f ms"
          % (mode, len(commits), BATCH, len(commits) * BATCH / seconds,
             pct(commits, 0.5), pct(commits, 0.99), max(commits) * 1000))


if __name__ == "__main__":
    main()
