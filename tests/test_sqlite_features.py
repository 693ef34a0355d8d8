"""SQLite schema features the sample databases lack, built in code and round-tripped."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from unibackup.config import BackupConfig, BatchingConfig, Config
from unibackup.errors import UnibackupError, UsageError
from unibackup.events import EventListener
from unibackup.format import BackupReader, RowBatch
from unibackup.manager import get_plugin_manager
from unibackup.service import BackupService

from sqlite_contents import assert_same_database, contents

FEATURES = """
PRAGMA user_version = 42;
PRAGMA application_id = 1234567;
CREATE TABLE parent(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE);
CREATE TABLE child(
    id INTEGER PRIMARY KEY,
    parent_id INTEGER REFERENCES parent(id) ON DELETE CASCADE,
    note TEXT
);
CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
CREATE TABLE typed(id INTEGER PRIMARY KEY, n INT NOT NULL, r REAL, t TEXT, b BLOB, a ANY) STRICT;
CREATE TABLE gen(
    a INTEGER, b INTEGER,
    v INTEGER GENERATED ALWAYS AS (a + b) VIRTUAL,
    s TEXT GENERATED ALWAYS AS (a || '-' || b) STORED
);
CREATE TABLE "odd ""name"" here"("select" TEXT, "from" INT, "ünï cödé" TEXT, rowid TEXT, "a b" INT);
CREATE TABLE "all aliases"(rowid TEXT, _rowid_ TEXT, oid TEXT);
CREATE TABLE desc_key(x INTEGER PRIMARY KEY DESC, y);
CREATE TABLE log(msg TEXT);
CREATE VIEW "child view" AS SELECT c.id, p.name FROM child c JOIN parent p ON p.id = c.parent_id;
CREATE TRIGGER child_log AFTER INSERT ON child BEGIN INSERT INTO log(msg) VALUES ('child ' || new.id); END;
CREATE TRIGGER view_insert INSTEAD OF INSERT ON "child view" BEGIN INSERT INTO log(msg) VALUES ('via view'); END;
CREATE INDEX child_partial ON child(note) WHERE note IS NOT NULL;
CREATE INDEX child_expr ON child(lower(note), parent_id * 2);
CREATE UNIQUE INDEX "odd index" ON "odd ""name"" here"("select");
INSERT INTO parent(name) VALUES ('a'), ('b'), ('c'), ('d');
DELETE FROM parent WHERE id >= 3;
INSERT INTO child VALUES (1, 1, 'X'), (2, 2, NULL), (3, 1, 'yy');
INSERT INTO kv VALUES ('x', x'00ff'), ('y', NULL), ('', x'');
INSERT INTO typed VALUES (1, 9223372036854775807, -0.0, 'a' || char(0) || 'b', x'', 1.5), (2, -9223372036854775808, 1e308, '', NULL, 'text');
INSERT INTO gen(a, b) VALUES (1, 2), (3, 4), (NULL, 5);
INSERT INTO "odd ""name"" here" VALUES ('s', 1, 'ü', 'rid', 5), ('t', 2, '日本', NULL, NULL);
INSERT INTO "all aliases" VALUES ('1', '2', '3');
INSERT INTO desc_key(y) VALUES ('gone'), ('kept');
INSERT INTO desc_key VALUES (10, 'ten');
DELETE FROM desc_key WHERE y = 'gone';
"""


def _round_trip(service: BackupService, source: Path, directory: Path, **backup_options) -> tuple[Path, str]:
    result = service.create_backup(str(source), directory / "backups", **backup_options)
    assert service.verify_backup(result.path, "full").valid
    restored = directory / "restored.db"
    service.restore_backup(result.path, str(restored))
    return restored, result.path


@pytest.fixture(scope="module")
def features(tmp_path_factory) -> tuple[Path, Path, str]:
    """(original, restored, backup path) of the feature database, made once for the module."""
    directory = tmp_path_factory.mktemp("features")
    source = directory / "features.db"
    conn = sqlite3.connect(source)
    conn.executescript(FEATURES)
    conn.close()
    service = BackupService(Config(), get_plugin_manager(load_entrypoints=False))
    restored, backup = _round_trip(service, source, directory)
    return source, restored, backup


def _query(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_everything_survives(features) -> None:
    original, restored, _ = features
    assert_same_database(original, restored)


def test_user_version_and_application_id(features) -> None:
    _, restored, _ = features
    assert _query(restored, "PRAGMA user_version") == [(42,)]
    assert _query(restored, "PRAGMA application_id") == [(1234567,)]


def test_autoincrement_high_water_mark_above_max_rowid(features) -> None:
    _, restored, _ = features
    assert _query(restored, "SELECT max(id) FROM parent") == [(2,)]
    assert _query(restored, "SELECT seq FROM sqlite_sequence WHERE name = 'parent'") == [(4,)]
    conn = sqlite3.connect(restored)
    try:
        assert conn.execute("INSERT INTO parent(name) VALUES ('new')").lastrowid == 5
    finally:
        conn.rollback()
        conn.close()


def test_without_rowid_and_strict_are_kept(features) -> None:
    _, restored, _ = features
    listed = {row[1]: row for row in _query(restored, "PRAGMA table_list")}
    assert listed["kv"][4] == 1 and listed["typed"][5] == 1
    conn = sqlite3.connect(restored)
    try:
        with pytest.raises(sqlite3.IntegrityError):  # STRICT still refuses a text in an INT column
            conn.execute("INSERT INTO typed(id, n) VALUES (9, 'not a number')")
    finally:
        conn.close()


def test_generated_columns_are_recreated_never_stored_in_rows(features, service) -> None:
    _, restored, backup = features
    assert _query(restored, "SELECT a, b, v, s FROM gen ORDER BY rowid") == [(1, 2, 3, "1-2"), (3, 4, 7, "3-4"), (None, 5, None, None)]
    with service.open_backup(backup) as opened:
        for record in BackupReader(opened.splitter, decode=True):
            if isinstance(record, RowBatch) and record.table.name == "gen":
                assert record.table.column_names == ("rowid", "a", "b")
                assert {c.name for c in record.table.generated_columns} == {"v", "s"}
                assert [row[1:] for row in record.rows] == [[1, 2], [3, 4], [None, 5]]


def test_foreign_keys_hold(features) -> None:
    original, restored, _ = features
    assert _query(restored, "PRAGMA foreign_key_check") == []
    assert _query(restored, "PRAGMA foreign_key_list(child)") == _query(original, "PRAGMA foreign_key_list(child)")


def test_names_needing_quotes_and_shadowed_rowid(features) -> None:
    original, restored, _ = features
    sql = 'SELECT _rowid_, "select", "from", "ünï cödé", rowid, "a b" FROM "odd ""name"" here" ORDER BY 1'
    assert _query(restored, sql) == _query(original, sql) == [(1, "s", 1, "ü", "rid", 5), (2, "t", 2, "日本", None, None)]
    assert _query(restored, 'SELECT rowid, _rowid_, oid FROM "all aliases"') == [("1", "2", "3")]


def test_integer_primary_key_desc_keeps_its_rowid(features) -> None:
    # "INTEGER PRIMARY KEY DESC" is not a rowid alias, so the rowid must travel on its own
    _, restored, _ = features
    assert _query(restored, "SELECT _rowid_, x, y FROM desc_key ORDER BY 1") == [(2, None, "kept"), (3, 10, "ten")]


def test_triggers_views_and_indexes(features) -> None:
    original, restored, _ = features
    # the triggers were not fired by the restore: the log holds exactly what the original holds
    assert _query(restored, "SELECT msg FROM log ORDER BY rowid") == _query(original, "SELECT msg FROM log ORDER BY rowid")
    assert _query(restored, 'SELECT * FROM "child view" ORDER BY id') == [(1, "a"), (2, "b"), (3, "a")]
    plan = " ".join(str(row) for row in _query(restored, "EXPLAIN QUERY PLAN SELECT * FROM child WHERE lower(note) = 'x' AND parent_id * 2 = 2"))
    assert "child_expr" in plan
    conn = sqlite3.connect(restored)
    try:  # the INSTEAD OF trigger on the view was restored, and works
        conn.execute('INSERT INTO "child view" VALUES (9, \'z\')')
        assert conn.execute("SELECT count(*) FROM log WHERE msg = 'via view'").fetchone() == (1,)
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute('INSERT INTO "odd ""name"" here"("select") VALUES (\'s\')')
    finally:
        conn.rollback()
        conn.close()


def test_page_size_and_encoding(service, make_db, tmp_path: Path) -> None:
    source = tmp_path / "small_pages.db"
    conn = sqlite3.connect(source)
    conn.execute("PRAGMA page_size = 1024")
    conn.execute("PRAGMA encoding = 'UTF-16le'")
    conn.execute("CREATE TABLE t(x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("ü" * i,) for i in range(300)])
    conn.commit()
    conn.close()
    restored, _ = _round_trip(service, source, tmp_path)
    assert_same_database(source, restored)
    assert _query(restored, "PRAGMA page_size") == [(1024,)]
    assert _query(restored, "PRAGMA encoding") == [("UTF-16le",)]


class _OnFirstBatch(EventListener):
    name = "test-first-batch"

    def __init__(self, callback):
        super().__init__()
        self._callback = callback
        self._fired = False

    def handle(self, event) -> None:
        if event.kind == "batch_written" and not self._fired:
            self._fired = True
            self._callback()


def test_concurrent_writer_sees_one_snapshot(make_db, tmp_path: Path) -> None:
    """The backup holds all or none of each of the writer's transactions (one in each table)."""
    source = make_db(
        "PRAGMA journal_mode = WAL; CREATE TABLE a(id INTEGER PRIMARY KEY); CREATE TABLE b(id INTEGER PRIMARY KEY);",
        inserts=[("INSERT INTO a VALUES (?)", [(i,) for i in range(200)]), ("INSERT INTO b VALUES (?)", [(i,) for i in range(200)])],
    )
    stop = threading.Event()
    committed = threading.Semaphore(0)
    errors: list[BaseException] = []

    def writer() -> None:
        conn = sqlite3.connect(source, isolation_level=None, timeout=10)
        try:
            n = 1000
            while not stop.is_set():
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO a VALUES (?)", (n,))
                conn.execute("INSERT INTO b VALUES (?)", (n,))
                conn.execute("COMMIT")
                committed.release()
                n += 1
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            conn.close()

    thread = threading.Thread(target=writer, daemon=True)

    def start_writing() -> None:  # called inside the backup, after its first batch of table a
        thread.start()
        for _ in range(20):
            assert committed.acquire(timeout=10)

    config = Config(backup=BackupConfig(batching="fixed"), batching=BatchingConfig(batch_rows=3, delay=0.001))
    service = BackupService(config, get_plugin_manager(load_entrypoints=False), listeners=[_OnFirstBatch(start_writing)])
    try:
        result = service.create_backup(str(source), tmp_path / "backups")
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(10)
    assert not errors
    restored = tmp_path / "restored.db"
    service.restore_backup(result.path, str(restored))
    ids_a = _query(restored, "SELECT id FROM a ORDER BY id")
    ids_b = _query(restored, "SELECT id FROM b ORDER BY id")
    assert ids_a == ids_b == [(i,) for i in range(200)]
    assert _query(source, "SELECT count(*) FROM b")[0][0] >= 220  # the writer did write meanwhile


def test_restore_refuses_a_non_empty_target_without_force(service, make_db, tmp_path: Path) -> None:
    source = make_db("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
    backup = service.create_backup(str(source), tmp_path / "backups").path
    target = make_db("CREATE TABLE other(y); INSERT INTO other VALUES ('keep me');", name="target.db")
    before = target.read_bytes()
    with pytest.raises(UsageError) as raised:
        service.restore_backup(backup, str(target))
    assert "--force" in raised.value.user_line()
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backups", "source.db", "target.db"]


def test_force_replaces_the_target_only_after_success(service, make_db, tmp_path: Path) -> None:
    source = make_db("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
    backup = Path(service.create_backup(str(source), tmp_path / "backups").path)
    target = make_db("CREATE TABLE other(y); INSERT INTO other VALUES ('keep me');", name="target.db")
    before = target.read_bytes()

    damaged = backup.with_name("damaged-" + backup.name)
    damaged.write_bytes(backup.read_bytes()[:-7])
    with pytest.raises(UnibackupError) as raised:
        service.restore_backup(damaged, str(target), force=True)
    assert raised.value.exit_code == 3
    assert target.read_bytes() == before  # a failed restore leaves the old database alone

    service.restore_backup(backup, str(target), force=True)
    assert contents(target) == contents(source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backups", "source.db", "target.db"]


def test_a_new_target_in_an_existing_empty_file(service, make_db, tmp_path: Path) -> None:
    source = make_db("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
    backup = service.create_backup(str(source), tmp_path / "backups").path
    target = tmp_path / "empty.db"
    target.touch()
    service.restore_backup(backup, str(target))
    assert contents(target) == contents(source)


def test_estimate_of_sparse_row_ids_is_not_their_span(service, make_db) -> None:
    source = make_db("CREATE TABLE t(id INTEGER PRIMARY KEY, x); INSERT INTO t VALUES (-5, 'a'), (4611686018427387904, 'b');")
    estimate = service.estimate(str(source))
    assert estimate.rows == 2 and estimate.per_table == {"t": 2}
    assert max(estimate.estimated_backup_bytes.values()) < 1 << 20


def test_restore_a_selection_of_tables(service, make_db, tmp_path: Path) -> None:
    source = make_db(
        "CREATE TABLE a(x); CREATE TABLE b(y); CREATE INDEX a_x ON a(x); CREATE INDEX b_y ON b(y);"
        "CREATE TRIGGER b_t AFTER INSERT ON b BEGIN SELECT 1; END; CREATE VIEW v AS SELECT x FROM a;"
        "INSERT INTO a VALUES (1); INSERT INTO b VALUES (2);"
    )
    backup = service.create_backup(str(source), tmp_path / "backups").path
    result = service.restore_backup(backup, str(tmp_path / "only_a.db"), tables=("a",))
    assert (result.tables, result.rows) == (1, 1)
    assert sorted(result.skipped) == ["index b_y (its table was not restored)", "trigger b_t (its table was not restored)"]
    assert _query(tmp_path / "only_a.db", "SELECT type, name FROM sqlite_master ORDER BY name") == [
        ("table", "a"), ("index", "a_x"), ("view", "v"),
    ]


def test_full_text_indexes_of_every_kind_and_planner_statistics(service, make_db, tmp_path: Path) -> None:
    source = make_db(
        """
        CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);
        CREATE INDEX docs_body ON docs(body);
        INSERT INTO docs VALUES (1, 'hello world'), (5, 'second document');
        CREATE VIRTUAL TABLE plain USING fts5(title, body);
        INSERT INTO plain(rowid, title, body) VALUES (3, 'greeting', 'hello there');
        CREATE VIRTUAL TABLE external USING fts5(body, content='docs', content_rowid='id');
        INSERT INTO external(external) VALUES ('rebuild');
        CREATE VIRTUAL TABLE contentless USING fts5(x, content='');
        INSERT INTO contentless(rowid, x) VALUES (7, 'only the index remembers this');
        CREATE VIRTUAL TABLE old USING fts4(body);
        INSERT INTO old(docid, body) VALUES (9, 'hello from fts4');
        ANALYZE;
        """
    )
    restored, _ = _round_trip(service, source, tmp_path)
    assert_same_database(source, restored)  # includes sqlite_stat1
    queries = {
        "SELECT rowid FROM plain WHERE plain MATCH 'hello'": [(3,)],
        "SELECT rowid FROM external WHERE external MATCH 'document'": [(5,)],
        "SELECT rowid FROM contentless WHERE contentless MATCH 'remembers'": [(7,)],
        "SELECT docid FROM old WHERE old MATCH 'fts4'": [(9,)],
    }
    for sql, expected in queries.items():
        assert _query(restored, sql) == expected, sql
    conn = sqlite3.connect(restored)
    try:
        for table in ("plain", "external", "contentless"):
            conn.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
        conn.execute("INSERT INTO old(old) VALUES ('integrity-check')")
    finally:
        conn.close()


def _stale_wal_beside(target: Path) -> None:
    """Give ``target`` the -wal and -shm files of another database, as a crash would leave them."""
    other = target.with_name("other.db")
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE stale(x)")
    conn.executemany("INSERT INTO stale VALUES (?)", [("x" * 300,) for _ in range(500)])
    conn.commit()
    wal, shm = Path(f"{other}-wal").read_bytes(), Path(f"{other}-shm").read_bytes()
    conn.close()
    other.unlink()
    Path(f"{target}-wal").write_bytes(wal)
    Path(f"{target}-shm").write_bytes(shm)


@pytest.mark.parametrize("existing", [True, False], ids=["force-over-a-database", "new-file"])
def test_journal_files_left_beside_the_target_are_never_replayed(service, make_db, tmp_path: Path, existing: bool) -> None:
    source = make_db("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
    backup = service.create_backup(str(source), tmp_path / "backups").path
    target = tmp_path / "target.db"
    if existing:
        make_db("CREATE TABLE old(y); INSERT INTO old VALUES ('old');", name="target.db")
    _stale_wal_beside(target)
    service.restore_backup(backup, str(target), force=existing)
    assert not Path(f"{target}-wal").exists() and not Path(f"{target}-shm").exists()
    assert contents(target) == contents(source)


def test_force_refuses_a_target_another_connection_is_using(service, make_db, tmp_path: Path) -> None:
    source = make_db("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
    backup = service.create_backup(str(source), tmp_path / "backups").path
    target = make_db("PRAGMA journal_mode = WAL; CREATE TABLE old(y); INSERT INTO old VALUES ('in use');", name="target.db")
    user = sqlite3.connect(target)
    try:
        assert user.execute("SELECT y FROM old").fetchall() == [("in use",)]
        with pytest.raises(UsageError) as raised:
            service.restore_backup(backup, str(target), force=True)
        assert "in use" in raised.value.user_line()
        assert user.execute("SELECT y FROM old").fetchall() == [("in use",)]
    finally:
        user.close()
    assert _query(target, "SELECT y FROM old") == [("in use",)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".target.db")]


def test_a_usage_error_is_reported_without_reading_the_whole_backup(service, make_db, tmp_path: Path) -> None:
    # the damage at the end is only found by reading to the end: "use --force" must come first
    source = make_db("CREATE TABLE t(x);", inserts=[("INSERT INTO t VALUES (?)", [(i,) for i in range(2000)])])
    backup = Path(service.create_backup(str(source), tmp_path / "backups", compression="none").path)
    damaged = backup.with_name("damaged-" + backup.name)
    damaged.write_bytes(backup.read_bytes()[:-60] + b"0" * 60)
    target = make_db("CREATE TABLE other(y);", name="target.db")
    with pytest.raises(UsageError) as raised:
        service.restore_backup(damaged, str(target))
    assert "--force" in raised.value.user_line()


def test_restore_into_an_existing_empty_database(tmp_path):
    from unibackup import BackupService

    source = tmp_path / "s.db"
    conn = sqlite3.connect(source)
    conn.execute("CREATE TABLE t (a)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    service = BackupService()
    backup = service.create_backup(str(source), tmp_path / "out").path
    target = tmp_path / "empty.db"
    empty = sqlite3.connect(target)
    empty.execute("CREATE TABLE x (y)")
    empty.execute("DROP TABLE x")
    empty.close()
    assert target.stat().st_size > 0
    service.restore_backup(backup, str(target))
    assert sqlite3.connect(target).execute("SELECT a FROM t").fetchall() == [(1,)]


def test_partial_restore_skips_views_and_triggers_that_use_tables_left_out(tmp_path):
    from unibackup import BackupService

    source = tmp_path / "s.db"
    conn = sqlite3.connect(source)
    conn.executescript(
        """
        CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);
        CREATE TABLE "b log" (id INTEGER PRIMARY KEY, note TEXT);
        CREATE VIEW a_only AS SELECT v FROM a;
        CREATE VIEW both_ AS SELECT a.v, l.note FROM a JOIN "b log" l ON l.id = a.id;
        CREATE VIEW on_both AS SELECT * FROM both_;
        CREATE TRIGGER a_logged AFTER UPDATE ON a BEGIN INSERT INTO [b log] (note) VALUES (new.v); END;
        CREATE TRIGGER a_plain AFTER UPDATE ON a BEGIN SELECT 'b log'; END;
        INSERT INTO a (v) VALUES ('x');
        """
    )
    conn.commit()
    conn.close()
    service = BackupService()
    backup = service.create_backup(str(source), tmp_path / "out").path
    target = tmp_path / "partial.db"
    result = service.restore_backup(backup, str(target), tables=("a",))
    names = {row[0] for row in sqlite3.connect(target).execute("SELECT name FROM sqlite_master WHERE type IN ('view', 'trigger')")}
    assert names == {"a_only", "a_plain"}
    assert any("both_" in s and "b log" in s for s in result.skipped)
    assert any("on_both" in s for s in result.skipped)
    assert any("a_logged" in s for s in result.skipped)
    restored = sqlite3.connect(target)
    restored.execute("UPDATE a SET v = 'y'")  # the trigger left in place works
    assert restored.execute("SELECT * FROM a_only").fetchall() == [("y",)]
