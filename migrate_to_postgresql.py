#!/usr/bin/env python3
"""Move a legacy SQLite install of the Music Time Machine into PostgreSQL.

Standalone (no Flask). One transaction: a crash, a failed verification or --strict with
rejects leaves the target exactly as it was; a rerun after success changes nothing.
See ``python migrate_to_postgresql.py --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import psycopg2

import db_config
from migration import load, parallel, swap, upsert, verify
from migration.cleaning_rules import original_values
from migration.progress import Progress, say
from migration.sqlite_source import LegacyInputError, LegacySource, TableSpec, open_legacy
from migration.workers import Cleaner, CleaningFailed

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_UNRECONCILED, EXIT_STRICT = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
COMMIT = "commit"  # what migrate() returns when everything reconciled and should be kept

DESCRIPTION = """\
Migrate a legacy SQLite database of the Music Time Machine (layout v1: artists/tracks/
playlist_tracks, or v2: tracks/snapshots; detected automatically) into the app's
PostgreSQL schema, creating the schema if it is missing.

Duplicates by Spotify id collapse into one row and every reference follows it. Dirty
values are repaired when that loses nothing (numbers stored as text, double-encoded
JSON, epoch timestamps, ...); anything else is written, with its original values, to the
rejects report. Timestamps without a zone are read as UTC. Rows the target already has
are never overwritten (legacy values only fill empty columns). The whole migration is
one transaction, verified before it commits: rerunning it is always safe. Rows are
cleaned on every core (up to 4 worker processes); memory stays flat whatever the size of
the file."""

EPILOG = """\
exit status:
  0  migrated (or verified) and reconciled
  1  bad input or target: not SQLite, locked, unknown layout, unreachable database,
     conflicting schema; or a cleaning process died (one line on stderr, nothing written)
  2  bad command line
  3  verification failed: nothing was committed (the reason is printed)
  4  --strict and some rows or values were rejected: nothing was committed
  130 interrupted (Ctrl-C) before the commit: nothing was committed

the rejects report (JSON lines) has one line per source row that did not land as it was:
  {"table", "legacy_key", "action": "rejected" | "merged" | "repaired", "reason",
   "original": {column: value}, "merged_into"?, "target_key"?}
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="migrate_to_postgresql.py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "sqlite_path", metavar="SQLITE_PATH", help="the legacy SQLite file (opened read-only, never modified)"
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="target PostgreSQL URL (default: the app's database: DATABASE_URL, "
        "else DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD, else the "
        "embedded PostgreSQL under instance/)",
    )
    parser.add_argument(
        "--user",
        metavar="SPOTIFY_USER_ID",
        help="Spotify user id that owns the legacy data; without it the data goes "
        f"to a placeholder user {load.PLACEHOLDER_USER!r} that the owner "
        "claims at first login",
    )
    parser.add_argument(
        "--rejects",
        metavar="FILE",
        help="where to write the rejects report, JSON lines "
        "(default: SQLITE_PATH.rejects.jsonl; with --dry-run or "
        "--verify-only, only when given)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run",
        action="store_true",
        help="read, clean, load and verify everything inside a transaction that "
        "is rolled back: prints what would happen, writes nothing",
    )
    mode.add_argument(
        "--verify-only",
        action="store_true",
        help="migrate nothing: compare the SQLite file with what the target "
        "already holds (row checksums, references, JSON shape, foreign keys)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="commit nothing (exit 4) if any row or value had to be rejected or "
        "cleared; merged duplicates and lossless repairs are allowed",
    )
    args = parser.parse_args(argv)
    if args.user is not None and (not args.user.strip() or any(c.isspace() for c in args.user)):
        parser.error("--user must be a Spotify user id (no spaces)")
    return args


@dataclass
class TableStats:
    source: int = 0
    read: int = 0
    rejected: int = 0  # by the cleaning rules
    repaired: int = 0  # rows with at least one lossless repair
    cleared: int = 0  # rows that landed with a value cleared or sanitised (reported)
    repair_kinds: Counter = field(default_factory=Counter)


class Report:
    """The JSON-lines rejects report, written beside the final name and renamed at the end."""

    def __init__(self, path: Path | None):
        self.path = path
        self.counts: Counter = Counter()
        self._file: TextIO | None = None
        if path is not None:
            self._partial = path.with_name(path.name + ".partial")
            self._file = self._partial.open("w", encoding="utf-8")

    def write(self, **line) -> None:
        self.counts[line["action"]] += 1
        if self._file is not None:
            self._file.write(json.dumps(line, ensure_ascii=True, default=str) + "\n")

    def finish(self) -> None:
        """Put the report under its final name; once done, again is a no-op."""
        if self._file is not None and self.path is not None:
            self._file.close()
            os.replace(self._partial, self.path)
            self._file = None

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._partial.unlink(missing_ok=True)
            self._file = None


def stage_table(cur, source: LegacySource, spec: TableSpec, report: Report, cleaner: Cleaner) -> TableStats:
    """Stream one SQLite table through its cleaner (on every core) into its staging table."""
    stats = TableStats(source=source.count(spec))
    progress = Progress(spec.name, stats.source)
    rejected_refs = []
    chunk_size = 2000 if spec.staging == "tracks" else 20000
    if source.shared_snapshot and cleaner.workers:  # each worker reads its ranges (same working directory)
        ranges = source.ranges(spec, chunk_size)
        results = cleaner.map_ranges(str(source.path), source.layout, spec.name, source.selected(spec), ranges)
    else:
        results = cleaner.map(source.layout, spec.name, source.stream(spec, chunk_size=chunk_size))
    with load.CopyPipe(cur.connection, spec.staging) as pipe:
        for cleaned in results:
            pipe.send(cleaned.copy_text)
            for action, legacy_key, reason, original in cleaned.reports:
                stats.rejected += action == "rejected"
                stats.cleared += action == "repaired"
                report.write(table=spec.name, legacy_key=legacy_key, action=action, reason=reason, original=original)
            stats.repaired += cleaned.repaired
            stats.repair_kinds.update(cleaned.repair_kinds)
            rejected_refs += cleaned.rejected_refs
            stats.read += cleaned.rows
            progress.update(cleaned.rows)
    progress.close()
    load.copy_rejected_refs(cur, spec.staging, rejected_refs)
    return stats


def write_pg_report(cur, source: LegacySource, report: Report) -> None:
    for name, rowid, key, action, reason, merged_into, target_key in verify.pg_report_rows(cur, source.layout):
        table = verify.SOURCE_TABLE[name]
        original = source.original_row(table, rowid)
        line = dict(
            table=table,
            legacy_key=key,
            action=action,
            reason=reason,
            original=original_values(list(original), original.values()) if original else None,
        )
        if merged_into is not None:
            line.update(merged_into=merged_into, target_key=target_key)
        report.write(**line)


@dataclass
class Run:
    """What main() must know to clean up: the private schema of a build not yet swapped in."""

    url: str
    private: swap.Plan | None = None
    new_owner: bool = False  # the swap creates the owner user (private builds)


def session_count() -> int:
    """Sessions for a private build: one per core the server likely has (it is usually this
    machine), at least two so one table's index builds while another loads."""
    return max(2, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2, 4))


def start_private_build(conn, cur, source: LegacySource, args, run: Run) -> int:
    """Commit the app's schema (as init-db makes it: no rows), drop what dead runs left,
    create the private schema; the owner's id."""
    conn.commit()
    for name in swap.drop_leftovers(cur):
        say(f"dropped {name}, left by a migration that did not finish")
    conn.commit()
    owner_id, run.new_owner = load.owner_for_private_build(cur, args.user)
    run.private = swap.create_private_tables(cur, source.layout)
    load.create_staging(cur, [spec.staging for spec in source.tables], private=True)
    conn.commit()
    say(f"empty target: building it in the private schema {run.private.schema} on {session_count()} sessions")
    return owner_id


def migrate(conn, source: LegacySource, args, report: Report, cleaner: Cleaner, run: Run) -> int | str:
    """The whole run: an exit status after rolling back, or COMMIT.

    A non-empty target (and --dry-run, --verify-only) is migrated in one transaction. An
    empty one is built in a private schema, committed as it goes and read by several
    sessions, then swapped in by the last transaction (migration.swap)."""
    started = time.monotonic()
    with conn.cursor() as cur:
        load.prepare_session(cur)
        added = load.ensure_schema(cur)
        if added:
            say(f"schema: created {', '.join(added)} from schema_postgres.sql")
        cur.execute("SELECT now()")
        clock = cur.fetchone()[0]  # stands for every timestamp the source lacks
        clock_sql = cur.mogrify("%s::timestamptz", (clock,)).decode()
        owner_id: int | None
        if not (args.dry_run or args.verify_only) and swap.tables_empty(cur, swap.MOVED_TABLES[source.layout]):
            owner_id = start_private_build(conn, cur, source, args, run)
        else:
            owner_id = load.ensure_owner(cur, args.user, create=not args.verify_only)
            load.create_staging(cur, [spec.staging for spec in source.tables])
        private = run.private
        missing_owner = (
            [f"the owner user {args.user or load.PLACEHOLDER_USER!r} does not exist in the target"]
            if owner_id is None
            else []
        )
        stats = {}
        for spec in source.tables:
            stats[spec.staging] = stage_table(cur, source, spec, report, cleaner)
            if private:
                conn.commit()
        step = time.monotonic()
        resolved = load.resolve(cur, source.layout, owner_id, private=private is not None)
        if private:
            conn.commit()
        say(f"resolved duplicates, references and orphans in {time.monotonic() - step:.1f} s")
        sessions = (
            parallel.Sessions(
                run.url,
                session_count(),
                load.SESSION_SETTINGS + (f"SET search_path = {swap.private_search_path(private.schema)}",),
            )
            if private
            else None
        )
        try:
            filled_from_empty: set[str] = set()
            if not args.verify_only:
                if owner_id is None:  # ensure_owner(create=True) inserted it in this transaction
                    raise load.TargetError("the owner user vanished while the migration ran")
                step = time.monotonic()
                filled_from_empty = upsert.load(
                    cur, source.layout, owner_id, private=private, sessions=sessions, clock=clock_sql
                )
                if private:
                    conn.commit()
                say(f"loaded into the target in {time.monotonic() - step:.1f} s")
            step = time.monotonic()
            checks = check_tables(cur, sessions, source, owner_id, filled_from_empty, clock)
        finally:
            if sessions is not None:
                sessions.close()
        problems, how = verify.check_database(cur, private.enforced_at_swap if private else frozenset())
        enforced = sum("enforced" in note for note in how)
        say(
            f"integrity: {enforced} JSON-object and foreign-key invariants enforced by validated "
            f"constraints, {len(how) - enforced} checked row by row"
        )
        write_pg_report(cur, source, report)
        say(f"verified in {time.monotonic() - step:.1f} s")
        problems += missing_owner + print_reconciliation(source, stats, resolved, checks, args, owner_id)
    lossy = report.counts["rejected"] + report.counts["repaired"]
    elapsed = time.monotonic() - started
    if problems:
        conn.rollback()
        for problem in problems:
            print(f"NOT RECONCILED: {problem}")
        print("nothing was committed")
        return EXIT_UNRECONCILED
    if args.strict and lossy:
        conn.rollback()
        print(
            f"--strict: {report.counts['rejected']} row(s) rejected and "
            f"{report.counts['repaired']} row(s) with cleared values; nothing was committed"
        )
        return EXIT_STRICT
    if args.dry_run or args.verify_only:
        conn.rollback()
        print(
            ("dry run: nothing was written" if args.dry_run else "verified: the target matches the source")
            + f" ({elapsed:.1f} s)"
        )
        return EXIT_OK
    if private is not None and owner_id is not None:
        step = time.monotonic()
        with conn.cursor() as cur:
            if run.new_owner:
                load.create_owner(cur, args.user, owner_id)
            swap.swap(cur, private)
            swap.bump_owner_data_version(cur, owner_id)
            upsert.reset_identity_sequences(cur)
        say(f"swapped the private tables into place in {time.monotonic() - step:.1f} s")
    return COMMIT  # main() commits: the one place that knows whether it happened


def check_tables(cur, sessions, source: LegacySource, owner_id, filled_from_empty, clock) -> dict:
    """Each table's checksums: on the private build's sessions at once, or one by one."""

    def check(name: str):
        target = verify.TARGET_TABLE[name]
        return lambda on: verify.check_table(on, name, source.layout, owner_id, target in filled_from_empty, clock)

    names = [spec.staging for spec in source.tables]
    if sessions is None:
        return {name: check(name)(cur) for name in names}
    return parallel.run_graph(sessions, {name: (check(name), []) for name in names})


def drop_private_build(conn, run: Run) -> None:
    """A private build that will not be swapped in: gone now (or, if the connection is gone
    too, at the next run's start)."""
    if run.private is None or conn.closed:
        return
    try:
        conn.rollback()
        with conn.cursor() as cur:
            swap.drop_schema(cur, run.private.schema)
        conn.commit()
    except psycopg2.Error:
        pass


def print_reconciliation(source, stats, resolved, checks, args, owner_id) -> list[str]:
    """Print the per-table reconciliation; return what does not add up."""
    problems = []
    verb = "present" if args.verify_only else "landed"
    print(f"\n{source.path} (layout {source.layout}) -> owner user id {owner_id}{' [dry run]' if args.dry_run else ''}")
    header = (
        f"{'table':<16}{'source':>10}{verb:>10}{'new':>10}{'merged':>9}{'rejected':>10}"
        f"{'repaired':>10}{'cleared':>9}{'checksums':>11}"
    )
    print(header + "\n" + "-" * len(header))
    for spec in source.tables:
        st, check = stats[spec.staging], checks[spec.staging]
        counts = resolved.get(spec.staging, {})
        merged, pg_rejected = counts.get("merged", 0), counts.get("rejected", 0)
        rejected = st.rejected + pg_rejected
        landed = check.staged_ok - check.missing
        new = 0 if args.verify_only else landed - check.preexisting
        checksum = "ok" if not (check.mismatched or check.missing) else f"{check.mismatched} bad"
        print(
            f"{spec.name:<16}{st.source:>10}{landed:>10}{max(new, 0):>10}{merged:>9}{rejected:>10}"
            f"{st.repaired:>10}{st.cleared + counts.get('cleared_refs', 0):>9}{checksum:>11}"
        )
        if st.read != st.source:
            problems.append(f"{spec.name}: read {st.read} rows but SQLite counts {st.source}")
        if st.source != landed + merged + rejected:
            problems.append(
                f"{spec.name}: source {st.source} != {verb} {landed} + merged {merged} "
                f"+ rejected {rejected} (missing: {', '.join(check.examples)})"
            )
        if check.unaccounted is None:
            problems.append(
                f"{spec.name}: the target's checksum total differs from the source's although no single row does"
            )
        elif check.unaccounted:
            problems.append(f"{spec.name}: the target holds {check.unaccounted} row(s) the source does not account for")
        if check.mismatched:
            problems.append(
                f"{spec.name}: {check.mismatched} row(s) differ from the source "
                f"(legacy keys {', '.join(check.examples)})"
            )
        for label, count in (
            ("references do not follow the surviving row", check.reference_errors),
            ("raw_json->'album'->>'release_date' differs", check.nested_errors),
        ):
            if count:
                problems.append(f"{spec.name}: {count} {label}")
        if check.kept_existing:
            print(
                f"  {spec.name}: {check.kept_existing} row(s) already in the target with other "
                "values were kept (the target is never overwritten)"
            )
        for kind, count in st.repair_kinds.most_common(6):
            print(f"  repaired {count:>8} x {kind}")
    return problems


def main(argv=None) -> int:
    args = parse_args(argv)
    url = None
    try:
        source = open_legacy(args.sqlite_path)
    except LegacyInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    report, status, cleaner, committed = None, EXIT_INPUT, None, False
    started = time.monotonic()
    try:
        # the cleaning workers start before the PostgreSQL connection exists: a child holding
        # a copy of its socket would keep a killed migration's transaction (and lock) alive
        cleaner = Cleaner()
        url = (
            db_config.normalize_database_url(args.database_url, "--database-url")
            if args.database_url
            else db_config.database_url_from_env()
        )
        try:
            conn = psycopg2.connect(url, connect_timeout=10, application_name="migrate_to_postgresql")
        except psycopg2.OperationalError as exc:
            raise load.TargetError(
                f"cannot connect to PostgreSQL at {db_config.describe_url(url)}: {db_config.first_line(exc)}"
            ) from None
        rejects = args.rejects or (None if args.dry_run or args.verify_only else args.sqlite_path + ".rejects.jsonl")
        report = Report(Path(rejects) if rejects else None)
        run = Run(url)
        try:
            say(f"migrating {source.path} (layout {source.layout}) into {db_config.describe_url(url)}")
            outcome = migrate(conn, source, args, report, cleaner, run)
            if isinstance(outcome, int):  # rolled back, with this exit status
                status = outcome
            else:  # COMMIT
                conn.commit()
                committed, status = True, EXIT_OK
                print(f"migrated and verified in {time.monotonic() - started:.1f} s: committed")
        finally:
            if not committed:
                drop_private_build(conn, run)
            conn.close()
        report.finish()
        if report.path and sum(report.counts.values()):
            print(f"rejects report: {report.path} ({', '.join(f'{n} {a}' for a, n in sorted(report.counts.items()))})")
        return status
    except (db_config.DatabaseConfigError, load.TargetError, swap.SwapRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except (CleaningFailed, LegacyInputError) as exc:  # the file failed mid-read: damaged
        print(f"error: {exc}; nothing was committed", file=sys.stderr)
    except psycopg2.Error as exc:
        where = db_config.describe_url(url) if url else "the target"
        print(f"error: PostgreSQL at {where}: {db_config.first_line(exc)}; nothing was committed", file=sys.stderr)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print(
            "interrupted after the commit: the migration is complete"
            if committed
            else "interrupted: nothing was committed",
            file=sys.stderr,
        )
        status = EXIT_OK if committed else EXIT_INTERRUPTED
    finally:
        if cleaner is not None:
            cleaner.close()
        source.close()
    if report is not None and committed:
        # what was committed keeps its report, however the run ended after the commit (Ctrl-C)
        try:
            report.finish()
        except OSError as exc:
            print(f"error: the rejects report was not kept ({exc}); the migration is committed", file=sys.stderr)
    elif report is not None:
        report.discard()
    return status


if __name__ == "__main__":
    sys.exit(main())
