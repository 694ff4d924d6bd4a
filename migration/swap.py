"""An empty target built in a private schema, then swapped in by one short transaction.

The tables a migration fills are created in ``mtm_import_<run>`` as copies of the app's
own (``CREATE TABLE ... (LIKE ... INCLUDING ALL EXCLUDING INDEXES)``: columns, defaults,
identity, generated columns, CHECK and NOT NULL constraints; LIKE does not keep index or
key names, so keys and indexes are rebuilt from the app's catalog definitions, by name,
after the data is in). Everything before the swap is private: the app reads the public
tables, which stay empty and unlocked. The swap then, under ACCESS EXCLUSIVE locks on the
(empty) public tables, drops them with whatever points at them (foreign keys of other
tables, views), moves the private tables in with ``ALTER TABLE ... SET SCHEMA`` (their
indexes, constraints and identity sequences move with them) and puts back the triggers,
the foreign keys and the views it dropped, from the definitions it read. Readers see the
empty tables or the migrated ones, never anything between. A failure, a Ctrl-C or a kill
at any point leaves only the private schema, which the next run (or this one, on its way
out) drops.

SQL here is catalog and DDL work on the migration's own objects; nothing here commits.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

from psycopg2 import sql

PRIVATE_PREFIX = "mtm_import_"
MOVED_TABLES = {"v1": ("artists", "tracks", "playlists", "playlist_tracks"), "v2": ("tracks", "snapshots")}
# the search dictionary a trigger on tracks keeps; built privately too, moved when the
# public one is empty, merged into it otherwise
DICTIONARY_TABLES = ("search_words", "search_word_variants")


class SwapRefused(Exception):
    """The target changed while the private build ran; one line for a person."""


def new_schema_name() -> str:
    return f"{PRIVATE_PREFIX}{time.strftime('%Y%m%d_%H%M%S', time.gmtime())}_{os.getpid()}"


def drop_leftovers(cur) -> list[str]:
    """Drop private schemas of runs that died (the caller holds the migration lock, so no
    other migration is using one)."""
    cur.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY 1",
        (PRIVATE_PREFIX.replace("_", r"\_") + "%",),
    )
    names = [row[0] for row in cur.fetchall()]
    for name in names:
        drop_schema(cur, name)
    return names


def drop_schema(cur, schema: str) -> None:
    cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def tables_empty(cur, tables) -> bool:
    for table in tables:
        cur.execute(sql.SQL("SELECT EXISTS (SELECT FROM public.{})").format(sql.Identifier(table)))
        if cur.fetchone()[0]:
            return False
    return True


@dataclass
class Plan:
    """What the private build creates after the data, and what the swap adds at the end."""

    schema: str
    tables: tuple[str, ...]  # app tables built privately and moved in
    merge_dictionary: bool  # the public dictionary has words: merge instead of moving it
    # (table, statement): primary keys and unique constraints; the other indexes
    keys: list[tuple[str, sql.Composable]] = field(default_factory=list)
    indexes: list[tuple[str, sql.Composable]] = field(default_factory=list)
    # (table, referenced table, statement): between private tables
    foreign_keys: list[tuple[str, str, sql.Composable]] = field(default_factory=list)
    swap_foreign_keys: list = field(default_factory=list)  # to tables that stay (users)
    enforced_at_swap: set[str] = field(default_factory=set)  # their "table.column"

    @property
    def moved(self) -> tuple[str, ...]:
        return self.tables + (() if self.merge_dictionary else DICTIONARY_TABLES)


def create_private_tables(cur, layout: str) -> Plan:
    """The private schema with an empty copy of each table the run fills.

    Definitions are read with only ``public`` on the search path, so references to public
    tables print unqualified; the build runs them with the private schema first on the
    path, where those names find the private copies (and ``users`` the public one)."""
    tables = MOVED_TABLES[layout]
    plan = Plan(new_schema_name(), tables, merge_dictionary=not tables_empty(cur, DICTIONARY_TABLES))
    cur.execute("SET search_path = public")
    cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(plan.schema)))
    for table in tables + DICTIONARY_TABLES:
        cur.execute(
            sql.SQL("CREATE TABLE {}.{} (LIKE public.{} INCLUDING ALL EXCLUDING INDEXES)").format(
                sql.Identifier(plan.schema), sql.Identifier(table), sql.Identifier(table)
            )
        )
    for table in plan.moved:
        _plan_keys_and_indexes(cur, plan, table)
    cur.execute(f"SET search_path = {private_search_path(plan.schema)}")
    return plan


def private_search_path(schema: str) -> str:
    return f'"{schema}", public'


def _plan_keys_and_indexes(cur, plan: Plan, table: str) -> None:
    target = sql.SQL("{}.{}").format(sql.Identifier(plan.schema), sql.Identifier(table))
    cur.execute(
        """SELECT c.conname, c.contype, pg_get_constraintdef(c.oid), r.relname,
                  (SELECT string_agg(a.attname, ',') FROM pg_attribute a
                   WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey))
           FROM pg_constraint c LEFT JOIN pg_class r ON r.oid = c.confrelid
           WHERE c.conrelid = %s::regclass AND c.contype IN ('p', 'u', 'x', 'f')
           ORDER BY c.contype DESC, c.conname""",
        (f"public.{table}",),
    )
    for name, kind, definition, referenced, columns in cur.fetchall():
        add = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(target, sql.Identifier(name)) + sql.SQL(definition)
        if kind != "f":
            plan.keys.append((table, add))
        elif referenced in plan.tables:
            plan.foreign_keys.append((table, referenced, add))
        else:
            plan.swap_foreign_keys.append(
                sql.SQL("ALTER TABLE public.{} ADD CONSTRAINT {} ").format(sql.Identifier(table), sql.Identifier(name))
                + sql.SQL(definition)
            )
            plan.enforced_at_swap.add(f"{table}.{columns}")
    cur.execute(
        """SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
           WHERE i.indrelid = %s::regclass
             AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)
           ORDER BY i.indexrelid::regclass::text""",
        (f"public.{table}",),
    )
    public_name = re.compile(rf" ON (ONLY )?(public\.)?{re.escape(table)} ")
    for (definition,) in cur.fetchall():
        private = public_name.sub(
            lambda match: f" ON {match.group(1) or ''}{_quoted(plan.schema)}.{table} ", definition, count=1
        )
        plan.indexes.append((table, sql.SQL(private)))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- the swap --------------------------------------------------------------------------


def _public_list(tables) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("public.{}").format(sql.Identifier(t)) for t in tables)


def _public_oids(tables) -> list[str]:
    return [f"public.{table}" for table in tables]


def _triggers(cur, tables) -> list[str]:
    """The app's triggers on the tables about to be replaced (not the internal ones of
    foreign keys, which the constraints bring back)."""
    cur.execute(
        """SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t
           WHERE t.tgrelid = ANY (%s::regclass[]) AND NOT t.tgisinternal ORDER BY t.tgrelid, t.tgname""",
        (_public_oids(tables),),
    )
    return [row[0] for row in cur.fetchall()]


def _trigger_states(cur, tables) -> list[tuple[str, str, str]]:
    """(table, trigger, tgenabled) of triggers not in the default firing mode."""
    cur.execute(
        """SELECT t.tgrelid::regclass::text, t.tgname, t.tgenabled FROM pg_trigger t
           WHERE t.tgrelid = ANY (%s::regclass[]) AND NOT t.tgisinternal AND t.tgenabled <> 'O'""",
        (_public_oids(tables),),
    )
    return cur.fetchall()


def _incoming_foreign_keys(cur, tables) -> list[tuple[str, str, str]]:
    """(table, name, definition) of foreign keys that other tables point at these with."""
    cur.execute(
        """SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c
           WHERE c.contype = 'f' AND c.confrelid = ANY (%(moved)s::regclass[])
             AND NOT c.conrelid = ANY (%(moved)s::regclass[])
           ORDER BY 1, 2""",
        {"moved": _public_oids(tables)},
    )
    return cur.fetchall()


def _dependent_views(cur, tables) -> list[tuple[str, str, str, str]]:
    """(kind, qualified name, definition, owner) of views that read these tables."""
    cur.execute(
        """SELECT DISTINCT v.relkind, format('%%I.%%I', n.nspname, v.relname), pg_get_viewdef(v.oid),
                  pg_get_userbyid(v.relowner), v.oid
           FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class
           JOIN pg_namespace n ON n.oid = v.relnamespace
           WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = ANY (%s::regclass[])
             AND v.oid <> ALL (%s::regclass[])
           ORDER BY v.oid""",
        (_public_oids(tables), _public_oids(tables)),
    )
    return [row[:4] for row in cur.fetchall()]


def swap(cur, plan: Plan) -> None:
    """Replace the empty public tables by the private ones, in the caller's transaction."""
    cur.execute("SET search_path = public")
    locked = plan.tables + DICTIONARY_TABLES
    cur.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(_public_list(locked)))
    if not tables_empty(cur, plan.tables):
        raise SwapRefused(
            f"the target's {', '.join(plan.tables)} gained rows while the migration ran; rerun it to merge into them"
        )
    if plan.merge_dictionary == tables_empty(cur, DICTIONARY_TABLES):
        raise SwapRefused("the target's search dictionary changed while the migration ran; rerun it")
    triggers, states = _triggers(cur, plan.tables), _trigger_states(cur, plan.tables)
    incoming = _incoming_foreign_keys(cur, plan.moved)
    views = _dependent_views(cur, plan.moved)
    owners = _owners(cur, plan.moved)
    for kind, name, _definition, _owner in reversed(views):
        cur.execute(f"DROP {'MATERIALIZED VIEW' if kind == 'm' else 'VIEW'} {name}")
    for table, name, _definition in incoming:
        cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(table), sql.Identifier(name)))
    # one statement (they point at each other), no CASCADE: anything unforeseen that depends
    # on them stops the swap instead of vanishing with them
    cur.execute(sql.SQL("DROP TABLE {}").format(_public_list(plan.moved)))
    for table in plan.moved:
        cur.execute(
            sql.SQL("ALTER TABLE {}.{} SET SCHEMA public").format(sql.Identifier(plan.schema), sql.Identifier(table))
        )
        if owners[table] != _current_user(cur):
            cur.execute(
                sql.SQL("ALTER TABLE public.{} OWNER TO {}").format(
                    sql.Identifier(table), sql.Identifier(owners[table])
                )
            )
    for statement in plan.swap_foreign_keys:
        cur.execute(statement)
    for definition in triggers:
        cur.execute(definition)
    for table, name, state in states:
        mode = {"D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}[state]
        cur.execute(sql.SQL(f"ALTER TABLE {{}} {mode} TRIGGER {{}}").format(sql.SQL(table), sql.Identifier(name)))
    for table, name, definition in incoming:
        cur.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.SQL(table), sql.Identifier(name))
            + sql.SQL(definition)
        )
    for kind, name, definition, owner in views:
        cur.execute(f"CREATE {'MATERIALIZED VIEW' if kind == 'm' else 'VIEW'} {name} AS {definition}")
        cur.execute(f"ALTER {'MATERIALIZED VIEW' if kind == 'm' else 'VIEW'} {name} OWNER TO {_quoted(owner)}")
    if plan.merge_dictionary:
        cur.execute(
            sql.SQL("SELECT remember_search_words(ARRAY(SELECT word FROM {}.search_words))").format(
                sql.Identifier(plan.schema)
            )
        )
    drop_schema(cur, plan.schema)  # what is left: the dictionary copies, when merged


def _owners(cur, tables) -> dict[str, str]:
    cur.execute(
        "SELECT relname, pg_get_userbyid(relowner) FROM pg_class WHERE oid = ANY (%s::regclass[])",
        (_public_oids(tables),),
    )
    return dict(cur.fetchall())


def _current_user(cur) -> str:
    cur.execute("SELECT current_user")
    return cur.fetchone()[0]


def bump_owner_data_version(cur, owner_id: int) -> None:
    """The private tables had none of the app's triggers while they filled, so what the
    snapshots trigger does for an insert (move the owner's data_version, which invalidates
    their cached charts) is done once here, when the schema has it."""
    cur.execute("SELECT to_regprocedure('bump_data_versions(bigint[])') IS NOT NULL")
    if cur.fetchone()[0]:
        cur.execute("SELECT bump_data_versions(ARRAY[%s]::bigint[])", (owner_id,))
