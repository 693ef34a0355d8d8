"""Reading a PostgreSQL database's schema from the system catalogs, as models and DDL.

Everything is read inside the backup's snapshot, with ``search_path`` empty so that every name
that the server prints (types, functions, view bodies) comes schema-qualified. The DDL is what a
same-engine restore runs: tables carry their columns, defaults, NOT NULL, identity, generated
columns and CHECK constraints; everything else is a :class:`SchemaObject` with a phase:

- pre-data (before the rows): schemas, extensions, types, domains, functions, aggregates,
  sequences, views, materialized views (created empty), partition attachments;
- post-data (after the rows): primary keys, unique and exclusion constraints, indexes, foreign
  keys, NOT VALID checks, triggers, rules, materialized view refreshes and sequence values.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import attrs
import psycopg

from unibackup.errors import SourceError, UsageError
from unibackup.models import ColumnSchema, DatabaseSchema, SchemaObject, TableSchema

from .encoding import LOGICAL_TYPES, json_expression, row_query

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

#: A table never analyzed has no row estimate; up to this many pages (16 MiB) its rows are counted,
#: beyond it they are counted in a sample of about this many pages.
COUNTED_PAGES = 2048


def quote(name: str) -> str:
    """An identifier quoted for PostgreSQL, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def qualified(namespace: str | None, name: str) -> str:
    return f"{quote(namespace)}.{quote(name)}" if namespace else quote(name)


def literal(text: str) -> str:
    """A string literal (standard_conforming_strings is on in every session we open)."""
    return "'" + text.replace("'", "''") + "'"


@attrs.frozen
class TypeInfo:
    oid: int
    namespace: str
    name: str
    typtype: str
    basetype: int
    element: int
    category: str
    typmod: int


@attrs.frozen
class SequenceRef:
    """A sequence whose value is read once the backup knows its tables (:meth:`Catalog.prepare_read`)."""

    oid: int
    relation: str  # qualified, for SELECT last_value
    owner: tuple[str, str] | None  # the table that owns it (serial, identity), if any
    obj: SchemaObject  # its options get last_value and is_called


@attrs.define
class Catalog:
    """What :func:`read_catalog` found: the schema, and how to read each table's rows.

    Reading the catalogs needs no privilege on any table; what does — locking the tables, reading
    sequence values — waits for the tables the backup reads (:meth:`prepare_read`)."""

    schema: DatabaseSchema
    row_queries: dict[tuple[str | None, str], str]
    locks: dict[tuple[str | None, str], str]  # LOCK TABLE target of each table with rows
    unreadable: set[tuple[str | None, str]]  # tables the user has no SELECT privilege on
    sequences: list[SequenceRef]

    def prepare_read(self, conn: psycopg.Connection, tables: list[TableSchema]) -> None:
        """Check the privileges, lock ``tables`` and read the values of their sequences (and of
        the sequences no table owns, which are part of every backup of their schema); a sequence
        of a table left out keeps its value when the user may read it. Raises a one-line error
        naming the first table or sequence the user may not read."""
        selected = {(table.namespace, table.name) for table in tables}
        user = conn.execute("SELECT current_user").fetchone()[0]
        for table in tables:
            if (table.namespace, table.name) in self.unreadable and table.has_data:
                raise SourceError(
                    f"missing privilege: the user {user!r} has no SELECT privilege on table {table.qualified_name!r}",
                    hint=f"GRANT SELECT ON {qualified(table.namespace, table.name)} TO {quote(user)}, or leave the table out (--exclude-table)",
                )
        locks = [self.locks[key] for key in self.locks if key in selected]
        if locks:
            conn.execute(f"LOCK TABLE {', '.join(locks)} IN ACCESS SHARE MODE")
        if not self.sequences:
            return
        granted = dict(conn.execute(
            "SELECT oid, pg_catalog.has_sequence_privilege(oid, 'SELECT') FROM unnest(%s::oid[]) oid", ([seq.oid for seq in self.sequences],)
        ).fetchall())
        wanted: list[SequenceRef] = []
        for seq in self.sequences:
            needed = seq.owner is None or seq.owner in selected
            if granted.get(seq.oid):
                wanted.append(seq)
            elif needed:
                owner = f" (of table {seq.owner[0]}.{seq.owner[1]})" if seq.owner else " (owned by no table: part of every backup of its schema)"
                raise SourceError(
                    f"missing privilege: the user {user!r} has no SELECT privilege on sequence {seq.obj.namespace}.{seq.obj.name}{owner}",
                    hint=f"GRANT SELECT ON SEQUENCE {seq.relation} TO {quote(user)}",
                )
        if not wanted:
            return
        union = " UNION ALL ".join(f"SELECT {seq.oid}::oid, last_value, is_called FROM {seq.relation}" for seq in wanted)
        values = {oid: (last, called) for oid, last, called in conn.execute(union).fetchall()}
        for seq in wanted:
            last, called = values[seq.oid]
            seq.obj.options.update(last_value=int(last), is_called=bool(called))


def _not_extension_member(alias: str, catalog: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = '{catalog}'::regclass "
        f"AND d.objid = {alias}.oid AND d.deptype = 'e')"
    )


class CatalogReader:
    """Runs the catalog queries on ``conn`` (inside the snapshot) for the schemas in scope."""

    def __init__(self, conn: psycopg.Connection, schemas: tuple[str, ...] = ()):
        self.conn = conn
        self.only_schemas = schemas
        self.objects: list[SchemaObject] = []
        self.types: dict[int, TypeInfo] = {}
        self.unreadable: set[tuple[str | None, str]] = set()
        self.sql_ascii = conn.info.parameter_status("server_encoding") == "SQL_ASCII"
        self.sequence_refs: list[SequenceRef] = []

    def _rows(self, sql: str, params: Any = None) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    # -- scope ----------------------------------------------------------------------------------
    def _schemas(self) -> dict[int, str]:
        rows = self._rows(
            "SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n "
            "WHERE n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_%%' AND "
            + _not_extension_member("n", "pg_namespace")
            + " ORDER BY n.nspname",
            (list(SYSTEM_SCHEMAS),),
        )
        found = {oid: name for oid, name in rows}
        if self.only_schemas:
            missing = [name for name in self.only_schemas if name not in found.values()]
            if missing:
                raise UsageError(f"the database has no schema named {missing[0]!r}", hint=f"schemas: {', '.join(sorted(found.values())) or 'none'}")
            found = {oid: name for oid, name in found.items() if name in self.only_schemas}
        return found

    def _add(self, kind: str, name: str, sql: str | None, *, namespace: str | None = None, table: str | None = None, phase: str = "pre-data", **options: Any) -> None:
        self.objects.append(SchemaObject(kind=kind, name=name, sql=sql, table=table, namespace=namespace, phase=phase, options=options))

    # -- the whole database ---------------------------------------------------------------------
    def read(self) -> Catalog:
        conn = self.conn
        schemas = self._schemas()
        oids = list(schemas)
        self._load_types()
        for name in schemas.values():
            self._add("schema", name, f"CREATE SCHEMA IF NOT EXISTS {quote(name)}")  # a schema is in no namespace
        self._extensions()
        self._user_types(oids)
        self._functions(oids)
        sequences = self._sequences(oids)
        tables, row_queries, locks, table_kinds = self._tables(oids, sequences)
        self._views(oids)
        self._constraints(table_kinds)
        self._indexes(oids)
        self._triggers_and_rules(oids, table_kinds)
        settings = dict(
            self._rows(
                "SELECT 'server_encoding', pg_catalog.pg_encoding_to_char(encoding) FROM pg_catalog.pg_database WHERE datname = current_database() "
                "UNION ALL SELECT 'lc_collate', datcollate FROM pg_catalog.pg_database WHERE datname = current_database() "
                "UNION ALL SELECT 'lc_ctype', datctype FROM pg_catalog.pg_database WHERE datname = current_database()"
            )
        )
        settings["schemas"] = list(schemas.values())
        settings["server_version_num"] = conn.info.server_version
        schema = DatabaseSchema(engine="postgresql", tables=tuple(tables), objects=tuple(self.objects), settings=settings)
        return Catalog(schema=schema, row_queries=row_queries, locks=locks, unreadable=self.unreadable, sequences=self.sequence_refs)

    def _load_types(self) -> None:
        for oid, namespace, name, typtype, basetype, element, category, typmod in self._rows(
            "SELECT t.oid, n.nspname, t.typname, t.typtype, t.typbasetype, t.typelem, t.typcategory, t.typtypmod "
            "FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
        ):
            self.types[oid] = TypeInfo(oid, namespace, name, typtype, basetype, element, category, typmod)

    def _base(self, oid: int) -> TypeInfo | None:
        info = self.types.get(oid)
        for _ in range(32):  # domains over domains
            if info is None or info.typtype != "d":
                return info
            info = self.types.get(info.basetype)
        return info

    def _builtin_name(self, info: TypeInfo | None) -> str:
        """The type's name when it is a built-in (or citext) type; "" otherwise."""
        if info is None:
            return ""
        if info.namespace == "pg_catalog" or info.name == "citext":
            return info.name
        return ""

    # -- pre-data -------------------------------------------------------------------------------
    def _extensions(self) -> None:
        for name, namespace, version in self._rows(
            "SELECT e.extname, n.nspname, e.extversion FROM pg_catalog.pg_extension e "
            "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace ORDER BY e.oid"
        ):
            if name == "plpgsql":
                continue
            sql = f"CREATE SCHEMA IF NOT EXISTS {quote(namespace)}; CREATE EXTENSION IF NOT EXISTS {quote(name)} WITH SCHEMA {quote(namespace)}"
            self._add("extension", name, sql, namespace=namespace, version=version)

    def _user_types(self, schema_oids: list[int]) -> None:
        rows = self._rows(
            "SELECT t.oid, n.nspname, t.typname, t.typtype, pg_catalog.format_type(t.oid, NULL), "
            "pg_catalog.format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault, "
            "CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation "
            "     THEN (SELECT pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) "
            "           FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = t.typcollation) END, "
            "(SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) "
            "FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
            "LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype "
            "WHERE t.typnamespace = ANY(%s) AND t.typtype IN ('e', 'd', 'c', 'r', 'b') AND "
            + _not_extension_member("t", "pg_type")
            + " ORDER BY t.oid",
            (schema_oids,),
        )
        labels: dict[int, list[str]] = defaultdict(list)
        for typid, label in self._rows("SELECT enumtypid, enumlabel FROM pg_catalog.pg_enum ORDER BY enumtypid, enumsortorder"):
            labels[typid].append(label)
        for oid, namespace, name, typtype, formatted, base, notnull, default, collation, relkind in rows:
            if typtype == "e":
                body = ", ".join(literal(label) for label in labels[oid])
                self._add("type", name, f"CREATE TYPE {formatted} AS ENUM ({body})", namespace=namespace, labels=labels[oid])
            elif typtype == "d":
                self._add("domain", name, self._domain_sql(oid, formatted, base, notnull, default, collation), namespace=namespace)
            elif typtype == "c":
                if relkind != "c":
                    continue  # the row type of a table or view
                self._add("type", name, self._composite_sql(oid, formatted), namespace=namespace)
            elif typtype == "r":
                self._add("type", name, self._range_sql(oid, formatted), namespace=namespace)
            elif typtype == "b" and self.types.get(oid) and self.types[oid].category != "A":
                self._add("type", name, None, namespace=namespace, not_kept="a base type written in C cannot be recreated from a logical backup")

    def _domain_sql(self, oid: int, formatted: str, base: str, notnull: bool, default: str | None, collation: str | None) -> str:
        sql = f"CREATE DOMAIN {formatted} AS {base}"
        if collation:
            sql += f" COLLATE {collation}"
        if default is not None:
            sql += f" DEFAULT {default}"
        if notnull:
            sql += " NOT NULL"
        for name, definition in self._rows(
            "SELECT conname, pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint WHERE contypid = %s ORDER BY conname", (oid,)
        ):
            sql += f" CONSTRAINT {quote(name)} {definition}"
        return sql

    def _composite_sql(self, oid: int, formatted: str) -> str:
        attributes = self._rows(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_type t ON t.typrelid = a.attrelid WHERE t.oid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (oid,),
        )
        return f"CREATE TYPE {formatted} AS ({', '.join(f'{quote(name)} {kind}' for name, kind in attributes)})"

    def _range_sql(self, oid: int, formatted: str) -> str:
        ((subtype, opclass, opclass_default, collation, canonical, diff, multirange),) = self._rows(
            "SELECT pg_catalog.format_type(r.rngsubtype, NULL), "
            "pg_catalog.quote_ident(on_.nspname) || '.' || pg_catalog.quote_ident(oc.opcname), oc.opcdefault, "
            "CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN "
            "  (SELECT pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) FROM pg_catalog.pg_collation co "
            "   JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = r.rngcollation) END, "
            "NULLIF(r.rngcanonical, 0)::regproc::text, NULLIF(r.rngsubdiff, 0)::regproc::text, pg_catalog.format_type(r.rngmultitypid, NULL) "
            "FROM pg_catalog.pg_range r JOIN pg_catalog.pg_opclass oc ON oc.oid = r.rngsubopc "
            "JOIN pg_catalog.pg_namespace on_ ON on_.oid = oc.opcnamespace JOIN pg_catalog.pg_type st ON st.oid = r.rngsubtype "
            "WHERE r.rngtypid = %s",
            (oid,),
        )
        parts = [f"SUBTYPE = {subtype}"]
        if not opclass_default:
            parts.append(f"SUBTYPE_OPCLASS = {opclass}")
        if collation:
            parts.append(f"COLLATION = {collation}")
        if canonical:
            parts.append(f"CANONICAL = {canonical}")
        if diff:
            parts.append(f"SUBTYPE_DIFF = {diff}")
        if multirange:
            parts.append(f"MULTIRANGE_TYPE_NAME = {multirange}")
        return f"CREATE TYPE {formatted} AS RANGE ({', '.join(parts)})"

    def _functions(self, schema_oids: list[int]) -> None:
        rows = self._rows(
            "SELECT p.oid, n.nspname, p.proname, p.prokind, pg_catalog.pg_get_function_identity_arguments(p.oid), "
            "CASE WHEN p.prokind <> 'a' THEN pg_catalog.pg_get_functiondef(p.oid) END "
            "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.pronamespace = ANY(%s) AND "
            + _not_extension_member("p", "pg_proc")
            # a type's own functions (the constructors CREATE TYPE ... AS RANGE makes) come with it
            + " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_proc'::regclass "
            "AND d.objid = p.oid AND d.refclassid = 'pg_type'::regclass AND d.deptype = 'i')"
            " ORDER BY p.oid",
            (schema_oids,),
        )
        for oid, namespace, name, kind, arguments, definition in rows:
            signature = f"{name}({arguments})"
            if kind == "a":
                self._add("aggregate", signature, self._aggregate_sql(oid, namespace, name), namespace=namespace)
            else:
                self._add("procedure" if kind == "p" else "function", signature, definition, namespace=namespace)

    def _aggregate_sql(self, oid: int, namespace: str, name: str) -> str | None:
        rows = self._rows(
            "SELECT a.aggkind, pg_catalog.pg_get_function_arguments(a.aggfnoid), a.aggtransfn::regproc::text, "
            "pg_catalog.format_type(a.aggtranstype, NULL), NULLIF(a.aggfinalfn, 0)::regproc::text, a.agginitval, "
            "NULLIF(a.aggcombinefn, 0)::regproc::text, NULLIF(a.aggserialfn, 0)::regproc::text, NULLIF(a.aggdeserialfn, 0)::regproc::text, "
            "a.aggfinalextra, NULLIF(a.aggsortop, 0)::regoperator::text, p.proparallel "
            "FROM pg_catalog.pg_aggregate a JOIN pg_catalog.pg_proc p ON p.oid = a.aggfnoid WHERE a.aggfnoid = %s",
            (oid,),
        )
        if not rows:
            return None
        kind, arguments, transfn, transtype, finalfn, initcond, combinefn, serialfn, deserialfn, finalextra, sortop, parallel = rows[0]
        if kind != "n":
            return None  # ordered-set and hypothetical-set aggregates: not recreated
        parts = [f"SFUNC = {transfn}", f"STYPE = {transtype}"]
        if finalfn:
            parts.append(f"FINALFUNC = {finalfn}")
            if finalextra:
                parts.append("FINALFUNC_EXTRA")
        if initcond is not None:
            parts.append(f"INITCOND = {literal(initcond)}")
        if combinefn:
            parts.append(f"COMBINEFUNC = {combinefn}")
        if serialfn:
            parts.append(f"SERIALFUNC = {serialfn}")
        if deserialfn:
            parts.append(f"DESERIALFUNC = {deserialfn}")
        if sortop:
            parts.append(f"SORTOP = OPERATOR({sortop.split('(')[0]})")
        if parallel == "s":
            parts.append("PARALLEL = SAFE")
        elif parallel == "r":
            parts.append("PARALLEL = RESTRICTED")
        return f"CREATE AGGREGATE {qualified(namespace, name)}({arguments}) ({', '.join(parts)})"

    def _sequences(self, schema_oids: list[int]) -> dict[int, dict[str, Any]]:
        rows = self._rows(
            "SELECT c.oid, n.nspname, c.relname, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, "
            "s.seqmin, s.seqmax, s.seqcache, s.seqcycle, d.deptype, tn.nspname, t.relname, a.attname, a.attnum "
            "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid "
            "LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid "
            "     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
            "LEFT JOIN pg_catalog.pg_class t ON t.oid = d.refobjid LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace "
            "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
            "WHERE c.relkind = 'S' AND c.relnamespace = ANY(%s) AND "
            + _not_extension_member("c", "pg_class")
            + " ORDER BY c.oid",
            (schema_oids,),
        )
        sequences: dict[int, dict[str, Any]] = {}
        for oid, namespace, name, datatype, start, increment, minimum, maximum, cache, cycle, deptype, table_ns, table, column, attnum in rows:
            options_sql = (
                f"AS {datatype} START WITH {start} INCREMENT BY {increment} MINVALUE {minimum} MAXVALUE {maximum} "
                f"CACHE {cache}{' CYCLE' if cycle else ''}"
            )
            info = {"namespace": namespace, "name": name, "options_sql": options_sql}
            owner = [table_ns, table, column] if table is not None else None
            identity = deptype == "i"
            sequences[oid] = {**info, "identity": identity, "owned_by": owner, "column_key": (table_ns, table, attnum)}
            self._add(
                "sequence",
                name,
                None if identity else f"CREATE SEQUENCE {qualified(namespace, name)} {options_sql}",
                namespace=namespace,
                table=table,
                phase="pre-data",
                owned_by=owner,
                identity=identity,
            )
            # last_value and is_called: read by Catalog.prepare_read, for the sequences the backup needs
            self.sequence_refs.append(SequenceRef(oid, qualified(namespace, name), (table_ns, table) if table is not None else None, self.objects[-1]))
        return sequences

    # -- tables ---------------------------------------------------------------------------------
    def _tables(self, schema_oids: list[int], sequences: dict[int, dict[str, Any]]):
        rows = self._rows(
            "SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.reltuples::float8, c.relispartition, "
            "pg_catalog.pg_get_expr(c.relpartbound, c.oid), "
            "CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END, c.reloptions, "
            "ARRAY(SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid ORDER BY i.inhseqno), "
            "(SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition), "
            "CASE WHEN c.relkind = 'p' THEN (SELECT sum(greatest(l.reltuples, 0))::float8 FROM pg_catalog.pg_partition_tree(c.oid) pt "
            "      JOIN pg_catalog.pg_class l ON l.oid = pt.relid WHERE pt.isleaf) END, "
            "pg_catalog.pg_table_size(c.oid), pg_catalog.has_table_privilege(c.oid, 'SELECT'), "
            "CASE WHEN c.relkind = 'p' THEN ARRAY(SELECT pt.relid FROM pg_catalog.pg_partition_tree(c.oid) pt "
            "      JOIN pg_catalog.pg_class l ON l.oid = pt.relid WHERE pt.isleaf AND l.reltuples < 0) END "
            "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'f') AND c.relnamespace = ANY(%s) AND "
            + _not_extension_member("c", "pg_class")
            + " ORDER BY c.relispartition, n.nspname, c.relname",
            (schema_oids,),
        )
        oids = [row[0] for row in rows]
        columns = self._columns(oids)
        checks = self._checks(oids)
        identity_sequences = {seq["column_key"]: seq for seq in sequences.values() if seq["identity"]}
        in_scope = {row[0] for row in rows}
        parent_of = {row[0]: row[11] for row in rows}
        names = {row[0]: (row[1], row[2]) for row in rows}
        tables: list[TableSchema] = []
        row_queries: dict[tuple[str | None, str], str] = {}
        locks: dict[tuple[str | None, str], str] = {}
        table_kinds: dict[int, tuple[str, str, str]] = {}
        self.table_sizes = 0
        for oid, namespace, name, relkind, persistence, reltuples, is_partition, bound, partkey, reloptions, parents, parent, tree_rows, size, readable, unanalyzed in rows:
            table_name = qualified(namespace, name)
            if relkind == "f":
                self._add("foreign_table", name, None, namespace=namespace, table=name, not_kept="foreign table: its data lives on another server")
                continue
            if not readable:
                self.unreadable.add((namespace, name))
            table_kinds[oid] = (namespace, name, relkind)
            self.table_sizes += int(size or 0)
            cols = columns.get(oid, [])
            row_columns: list[ColumnSchema] = []
            generated: list[ColumnSchema] = []
            definitions: list[str] = []
            expressions: list[str] = []
            for col in cols:
                definitions.append(self._column_sql(col, identity_sequences.get((namespace, name, col["attnum"]))))
                if col["generated"]:
                    generated.append(col["schema"])
                    continue
                row_columns.append(col["schema"])
                expressions.append(col["expression"])
            for check_name, definition, validated, local in checks.get(oid, []):
                if not validated:
                    self._add(
                        "constraint", check_name, f"ALTER TABLE {table_name} ADD CONSTRAINT {quote(check_name)} {definition} NOT VALID",
                        namespace=namespace, table=name, phase="post-data", contype="c",
                    )
                elif local or is_partition:
                    definitions.append(f"CONSTRAINT {quote(check_name)} {definition}")
            sql = f"CREATE {'UNLOGGED ' if persistence == 'u' else ''}TABLE {table_name} (" + ", ".join(definitions) + ")"
            options: dict[str, Any] = {}
            parent_names = [self._relation_name(parent_oid) for parent_oid in parents]
            if parent_names and not is_partition:
                sql += f" INHERITS ({', '.join(qualified(*pair) for pair in parent_names)})"
                options["inherits"] = [f"{ns}.{rel}" for ns, rel in parent_names]
            if partkey:
                sql += f" PARTITION BY {partkey}"
                options["partition_by"] = partkey
            if reloptions:
                sql += f" WITH ({', '.join(reloptions)})"
            has_data = True
            kind = "table"
            estimate: int | None = int(reltuples) if reltuples is not None and reltuples >= 0 else self._unanalyzed_rows(oid)
            relation = f"ONLY {table_name}"
            if relkind == "p":
                kind = "partitioned"
                estimate = int(tree_rows or 0) + sum(self._unanalyzed_rows(leaf) or 0 for leaf in unanalyzed or ())
                relation = table_name  # the rows of every partition, read once through the root
            if is_partition:
                parent_ns, parent_rel = parent_names[0]
                options["partition_of"] = f"{parent_ns}.{parent_rel}"
                options["partition_bound"] = bound
                if kind == "table":
                    kind = "partition"
                self._add(
                    "partition", name, f"ALTER TABLE ONLY {qualified(parent_ns, parent_rel)} ATTACH PARTITION {table_name} {bound}",
                    namespace=namespace, table=name, phase="pre-data", parent=[parent_ns, parent_rel],
                )
            parent_oid = parent_of.get(oid)
            if parent_oid is not None and parent_oid in in_scope:
                root = parent_oid
                while parent_of.get(root) in in_scope:
                    root = parent_of[root]
                root_ns, root_name = names[root]
                has_data = False
                options["data_in"] = f"{root_ns}.{root_name}"
                estimate = 0
            table = TableSchema(
                name=name,
                namespace=namespace,
                columns=tuple(row_columns),
                kind=kind,
                create_sql=sql,
                row_estimate=estimate,
                has_data=has_data,
                generated_columns=tuple(generated),
                options=options,
            )
            tables.append(table)
            if has_data:
                row_queries[(namespace, name)] = row_query(relation, expressions)
                locks[(namespace, name)] = relation  # a partitioned table's lock takes its partitions
        return tables, row_queries, locks, table_kinds

    def _unanalyzed_rows(self, oid: int) -> int | None:
        """Rows of a table never analyzed (``reltuples`` is -1 then): counted while its pages
        are few, measured on a sample of its pages when it is larger; None when the user may not
        read it."""
        ((relation, pages, readable),) = self._rows(
            "SELECT %s::regclass::text, pg_catalog.pg_relation_size(%s) / pg_catalog.current_setting('block_size')::int, "
            "pg_catalog.has_table_privilege(%s, 'SELECT')",
            (oid, oid, oid),
        )
        if not readable:
            return None
        if pages <= COUNTED_PAGES:
            ((count,),) = self._rows(f"SELECT count(*) FROM ONLY {relation}")
            return int(count)
        percent = 100.0 * COUNTED_PAGES / pages
        ((count,),) = self._rows(f"SELECT count(*) FROM ONLY {relation} TABLESAMPLE SYSTEM (%s) REPEATABLE (0)", (percent,))
        return int(count * 100.0 / percent)

    def _relation_name(self, oid: int) -> tuple[str, str]:
        ((namespace, name),) = self._rows(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
            (oid,),
        )
        return namespace, name

    def _columns(self, oids: list[int]) -> dict[int, list[dict[str, Any]]]:
        rows = self._rows(
            "SELECT a.attrelid, a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.atttypid, a.atttypmod, "
            "a.attnotnull, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated, "
            "CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN "
            "  (SELECT pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) FROM pg_catalog.pg_collation co "
            "   JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END, "
            "a.attislocal, a.attinhcount "
            "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum "
            "WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum",
            (oids,),
        )
        pk = self._primary_keys(oids)
        labels: dict[int, list[str]] = defaultdict(list)
        for typid, label in self._rows("SELECT enumtypid, enumlabel FROM pg_catalog.pg_enum ORDER BY enumtypid, enumsortorder"):
            labels[typid].append(label)
        result: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for relid, attnum, name, declared, typid, typmod, notnull, default, identity, generated, collation, local, inherited in rows:
            base = self._base(typid)
            element = None
            options: dict[str, Any] = {}
            logical = "other"
            if base is not None and base.category == "A" and base.element:
                element_info = self._base(base.element)
                element = self._builtin_name(element_info) or "?"
                logical = "array"
                options["element_type"] = element_info.name if element_info else None
                options["element_logical_type"] = LOGICAL_TYPES.get(element, "other")
            elif base is not None and base.typtype == "e":
                logical = "enum"
                options["labels"] = labels.get(base.oid, [])
            else:
                logical = LOGICAL_TYPES.get(self._builtin_name(base), "other")
            options.update(_type_modifiers(self._builtin_name(base), typmod if base is not None and base.oid == typid else self._domain_typmod(typid)))
            if base is not None and base.oid != typid:
                options["domain"] = declared
            if identity:
                options["identity"] = "always" if identity == "a" else "by default"
            column_sql = quote(name)
            schema = ColumnSchema(
                name=name,
                declared_type=declared,
                logical_type=logical,
                nullable=not notnull,
                default=None if generated else default,
                primary_key=pk.get((relid, attnum), 0),
                options=options if not generated else {**options, "expression": default, "stored": True},
            )
            result[relid].append(
                {
                    "attnum": attnum,
                    "name": name,
                    "declared": declared,
                    "notnull": notnull,
                    "default": default,
                    "identity": identity,
                    "generated": generated,
                    "collation": collation,
                    "schema": schema,
                    "expression": json_expression(column_sql, self._builtin_name(base), element, self.sql_ascii),
                }
            )
        return result

    def _domain_typmod(self, typid: int) -> int:
        info = self.types.get(typid)
        while info is not None and info.typtype == "d":
            if info.typmod >= 0:
                return info.typmod
            info = self.types.get(info.basetype)
        return -1

    def _primary_keys(self, oids: list[int]) -> dict[tuple[int, int], int]:
        positions: dict[tuple[int, int], int] = {}
        for relid, keys in self._rows(
            "SELECT conrelid, conkey FROM pg_catalog.pg_constraint WHERE contype = 'p' AND conrelid = ANY(%s)", (oids,)
        ):
            for position, attnum in enumerate(keys, 1):
                positions[(relid, attnum)] = position
        return positions

    def _column_sql(self, col: dict[str, Any], identity_sequence: dict[str, Any] | None) -> str:
        sql = f"{quote(col['name'])} {col['declared']}"
        if col["collation"]:
            sql += f" COLLATE {col['collation']}"
        if col["generated"]:
            sql += f" GENERATED ALWAYS AS ({col['default']}) STORED"
        elif col["identity"]:
            how = "ALWAYS" if col["identity"] == "a" else "BY DEFAULT"
            sequence = ""
            if identity_sequence is not None:
                name = qualified(identity_sequence["namespace"], identity_sequence["name"])
                options = identity_sequence["options_sql"].split(" ", 2)[2]  # without "AS <type>"
                sequence = f" (SEQUENCE NAME {name} {options})"
            sql += f" GENERATED {how} AS IDENTITY{sequence}"
        elif col["default"] is not None:
            sql += f" DEFAULT {col['default']}"
        if col["notnull"]:
            sql += " NOT NULL"
        return sql

    def _checks(self, oids: list[int]) -> dict[int, list[tuple[str, str, bool, bool]]]:
        result: dict[int, list[tuple[str, str, bool, bool]]] = defaultdict(list)
        for relid, name, definition, validated, local in self._rows(
            "SELECT conrelid, conname, pg_catalog.pg_get_constraintdef(oid), convalidated, conislocal FROM pg_catalog.pg_constraint "
            "WHERE contype = 'c' AND conrelid = ANY(%s) ORDER BY conrelid, conname",
            (oids,),
        ):
            result[relid].append((name, definition, validated, local))
        return result

    # -- views ----------------------------------------------------------------------------------
    def _views(self, schema_oids: list[int]) -> None:
        for namespace, name, relkind, definition, reloptions, populated in self._rows(
            "SELECT n.nspname, c.relname, c.relkind, pg_catalog.pg_get_viewdef(c.oid), c.reloptions, c.relispopulated "
            "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('v', 'm') AND c.relnamespace = ANY(%s) AND "
            + _not_extension_member("c", "pg_class")
            + " ORDER BY c.oid",
            (schema_oids,),
        ):
            body = definition.strip().rstrip(";")
            with_options = f" WITH ({', '.join(reloptions)})" if reloptions else ""
            if relkind == "v":
                self._add("view", name, f"CREATE VIEW {qualified(namespace, name)}{with_options} AS {body}", namespace=namespace)
            else:
                self._add(
                    "materialized_view", name, f"CREATE MATERIALIZED VIEW {qualified(namespace, name)}{with_options} AS {body} WITH NO DATA",
                    namespace=namespace, populated=bool(populated),
                )
                if populated:
                    self._add("refresh", name, f"REFRESH MATERIALIZED VIEW {qualified(namespace, name)}", namespace=namespace, table=name, phase="post-data")

    # -- post-data ------------------------------------------------------------------------------
    def _constraints(self, table_kinds: dict[int, tuple[str, str, str]]) -> None:
        if not table_kinds:
            return
        for relid, name, contype, definition in self._rows(
            "SELECT conrelid, conname, contype, pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint "
            "WHERE contype IN ('p', 'u', 'x', 'f') AND conrelid = ANY(%s) AND conparentid = 0 "
            "ORDER BY CASE contype WHEN 'f' THEN 1 ELSE 0 END, conrelid, conname",
            (list(table_kinds),),
        ):
            namespace, table, relkind = table_kinds[relid]
            only = "" if relkind == "p" else "ONLY "
            sql = f"ALTER TABLE {only}{qualified(namespace, table)} ADD CONSTRAINT {quote(name)} {definition}"
            kind = "foreign_key" if contype == "f" else "constraint"
            self._add(kind, name, sql, namespace=namespace, table=table, phase="post-data", contype=contype)

    def _indexes(self, schema_oids: list[int]) -> None:
        for namespace, name, table, definition in self._rows(
            "SELECT n.nspname, ic.relname, c.relname, pg_catalog.pg_get_indexdef(i.indexrelid) "
            "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
            "JOIN pg_catalog.pg_class c ON c.oid = i.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relnamespace = ANY(%s) AND c.relkind IN ('r', 'p', 'm') AND NOT ic.relispartition "
            "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con WHERE con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x')) "
            "AND " + _not_extension_member("c", "pg_class") + " ORDER BY ic.oid",
            (schema_oids,),
        ):
            self._add("index", name, definition, namespace=namespace, table=table, phase="post-data")

    def _triggers_and_rules(self, schema_oids: list[int], table_kinds: dict[int, tuple[str, str, str]]) -> None:
        view_rows = self._rows(
            "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('v', 'm') AND c.relnamespace = ANY(%s)",
            (schema_oids,),
        )
        owners = dict(table_kinds)
        for oid, namespace, name, relkind in view_rows:
            owners[oid] = (namespace, name, relkind)
        relids = list(owners)
        if not relids:
            return
        for relid, name, definition, enabled in self._rows(
            "SELECT tgrelid, tgname, pg_catalog.pg_get_triggerdef(oid), tgenabled FROM pg_catalog.pg_trigger "
            "WHERE tgrelid = ANY(%s) AND NOT tgisinternal AND tgparentid = 0 ORDER BY tgrelid, tgname",
            (relids,),
        ):
            namespace, table, _ = owners[relid]
            sql = definition
            if enabled == "D":
                sql += f"; ALTER TABLE {qualified(namespace, table)} DISABLE TRIGGER {quote(name)}"
            self._add("trigger", name, sql, namespace=namespace, table=table, phase="post-data")
        for relid, name, definition in self._rows(
            "SELECT ev_class, rulename, pg_catalog.pg_get_ruledef(oid) FROM pg_catalog.pg_rewrite WHERE ev_class = ANY(%s) AND rulename <> '_RETURN' ORDER BY ev_class, rulename",
            (relids,),
        ):
            namespace, table, _ = owners[relid]
            self._add("rule", name, definition.strip().rstrip(";"), namespace=namespace, table=table, phase="post-data")


def _type_modifiers(base: str, typmod: int) -> dict[str, Any]:
    """Length, precision and scale from a type modifier."""
    if typmod is None or typmod < 0:
        return {}
    if base in ("varchar", "bpchar"):
        return {"length": typmod - 4}
    if base == "numeric":
        value = typmod - 4
        return {"precision": (value >> 16) & 0xFFFF, "scale": value & 0xFFFF}
    if base in ("timestamp", "timestamptz", "time", "timetz", "interval"):
        return {"precision": typmod & 0xFFFF} if base != "interval" else {}
    if base in ("bit", "varbit"):
        return {"length": typmod}
    return {}


def read_catalog(conn: psycopg.Connection, schemas: tuple[str, ...] = ()) -> tuple[Catalog, int]:
    """The schema of the database ``conn`` is in (inside its snapshot), and the tables' size in bytes."""
    reader = CatalogReader(conn, schemas)
    catalog = reader.read()
    return catalog, reader.table_sizes
