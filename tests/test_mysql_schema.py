"""Schema objects on MySQL/MariaDB: keys, views, triggers, routines, events, sequences, partitions."""

from __future__ import annotations

import pytest

from mysql_support import Inspector, assert_same_database, databases, run_script, url_for

pytestmark = pytest.mark.mysql
__all__ = ["databases"]  # fixture

SCHEMA = r"""
CREATE TABLE `z_parent` (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(50) NOT NULL DEFAULT 'unnamed' COMMENT 'a comment, with a comma',
  child_id INT NULL,
  created DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  score DECIMAL(6,2) NOT NULL DEFAULT 0.00 CHECK (score >= 0),
  doubled DECIMAL(7,2) AS (score * 2) VIRTUAL,
  upper_name VARCHAR(50) AS (UPPER(name)) STORED,
  secret INT INVISIBLE DEFAULT 7,
  UNIQUE KEY uq_name (name),
  KEY ix_prefix (name(10), score DESC),
  FULLTEXT KEY ft_name (name),
  CONSTRAINT score_small CHECK (score < 10000)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='parents';

CREATE TABLE `a_child` (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  parent_id INT NOT NULL,
  `odd name ``quoted`` 100%` VARCHAR(20) DEFAULT 'it''s',
  CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES z_parent (id) ON DELETE CASCADE ON UPDATE RESTRICT
) ENGINE=InnoDB;

ALTER TABLE z_parent ADD CONSTRAINT fk_parent_child FOREIGN KEY (child_id) REFERENCES a_child (id) ON DELETE SET NULL;

CREATE TABLE `self ref` (
  id INT PRIMARY KEY,
  up INT NULL,
  CONSTRAINT fk_self FOREIGN KEY (up) REFERENCES `self ref` (id)
);

CREATE TABLE logbook (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, what VARCHAR(100) NOT NULL) ENGINE=InnoDB;

CREATE TABLE measurements (
  id INT NOT NULL,
  taken DATE NOT NULL,
  value DOUBLE,
  PRIMARY KEY (id, taken)
) PARTITION BY RANGE (YEAR(taken)) (
  PARTITION p2019 VALUES LESS THAN (2020),
  PARTITION p2020 VALUES LESS THAN (2021),
  PARTITION pmax VALUES LESS THAN MAXVALUE
);

CREATE TABLE notes (id INT PRIMARY KEY, body TEXT) ENGINE=MyISAM;

INSERT INTO z_parent (id, name, score) VALUES (1, 'alpha', 1.5), (2, 'beta', 2.25), (3, 'gamma', 0);
INSERT INTO a_child (id, parent_id) VALUES (10, 1), (11, 1), (12, 2);
UPDATE z_parent SET child_id = 10 WHERE id = 2;
INSERT INTO `self ref` VALUES (1, NULL), (2, 1), (3, 2);
INSERT INTO measurements VALUES (1, '2019-05-01', 1.5), (1, '2020-05-01', 2.5), (2, '2024-01-01', NULL);
INSERT INTO notes VALUES (1, 'not transactional');
ALTER TABLE z_parent AUTO_INCREMENT = 500;
ALTER TABLE logbook AUTO_INCREMENT = 18446744073709551000;

CREATE VIEW b_summary AS SELECT p.name, COUNT(c.id) AS children FROM z_parent p LEFT JOIN a_child c ON c.parent_id = p.id GROUP BY p.name;
CREATE VIEW a_top AS SELECT name FROM b_summary WHERE children > 0;

CREATE FUNCTION add_tax(amount DECIMAL(10,2)) RETURNS DECIMAL(10,2) DETERMINISTIC RETURN amount * 1.2;
CREATE PROCEDURE count_children(IN pid INT, OUT n INT) READS SQL DATA SELECT COUNT(*) INTO n FROM a_child WHERE parent_id = pid;

CREATE TRIGGER trg_child_insert AFTER INSERT ON a_child FOR EACH ROW INSERT INTO logbook (what) VALUES (CONCAT('child ', NEW.id));
CREATE TRIGGER trg_child_insert_2 AFTER INSERT ON a_child FOR EACH ROW FOLLOWS trg_child_insert INSERT INTO logbook (what) VALUES ('second');

CREATE EVENT ev_cleanup ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM logbook WHERE id < 0;
"""

MARIADB_ONLY = """
CREATE SEQUENCE seq_tickets START WITH 100 INCREMENT BY 5;
CREATE TABLE tickets (id INT NOT NULL DEFAULT NEXTVAL(seq_tickets) PRIMARY KEY, label VARCHAR(10));
INSERT INTO tickets (label) VALUES ('a'), ('b');
"""


def _is_mariadb() -> bool:
    from mysql_support import run_sql

    return "mariadb" in run_sql(None, "SELECT VERSION()")[0][0].lower()


def test_schema_objects_round_trip(service, databases, tmp_path):
    source = databases.new("objects")
    run_script(source, SCHEMA + (MARIADB_ONLY if _is_mariadb() else ""))
    result = service.create_backup(url_for(source), tmp_path)
    assert service.verify_backup(result.path, "full").valid
    header = service.inspect_backup(result.path).header
    kinds = {}
    for obj in header.schema.objects:
        kinds.setdefault(obj.kind, []).append(obj.name)
    assert kinds["view"] == ["b_summary", "a_top"]  # a view comes after the views it reads
    assert sorted(kinds["foreign_key"]) == ["fk_child_parent", "fk_parent_child", "fk_self"]
    assert kinds["trigger"] == ["trg_child_insert", "trg_child_insert_2"]
    assert sorted(kinds["function"] + kinds["procedure"]) == ["add_tax", "count_children"]
    assert kinds["event"] == ["ev_cleanup"]
    parent = header.schema.table("z_parent")
    assert [c.name for c in parent.generated_columns] == ["doubled", "upper_name"]
    assert "doubled" not in parent.column_names and "secret" in parent.column_names
    assert parent.options["auto_increment"] == 500
    assert header.schema.table("logbook").options["auto_increment"] == 18446744073709551000
    assert "not_in_snapshot" in header.schema.table("notes").options

    target = databases.new("objects_copy", create=False)
    restored = service.restore_backup(result.path, url_for(target))
    assert not restored.skipped
    assert_same_database(source, target)

    # the restored objects work: triggers fire, routines run, the sequence continues
    with Inspector(target) as inspector:
        inspector.rows("INSERT INTO a_child (id, parent_id) VALUES (13, 3)")
        assert inspector.rows("SELECT what FROM logbook ORDER BY id") == [("child 13",), ("second",)]
        assert inspector.rows("SELECT add_tax(10)")[0][0] == pytest.approx(12)
        assert inspector.rows("SELECT name FROM a_top ORDER BY name") == [("alpha",), ("beta",), ("gamma",)]
        if _is_mariadb():
            inspector.rows("INSERT INTO tickets (label) VALUES ('c')")
            assert inspector.rows("SELECT id FROM tickets ORDER BY id") == [(100,), (105,), (110,)]


def test_a_table_outside_the_snapshot_is_warned_about_once(databases, tmp_path):
    """Once per backup, and only for the tables it backs up (the preflight, which samples every
    table first, says nothing)."""
    import subprocess

    from mysql_support import UNIBACKUP

    source = databases.new("myisam")
    run_script(source, "CREATE TABLE cust (id INT PRIMARY KEY) ENGINE=InnoDB; CREATE TABLE legacy (id INT PRIMARY KEY) ENGINE=MyISAM;"
               "INSERT INTO cust VALUES (1); INSERT INTO legacy VALUES (1);")
    warning = "table legacy: the MyISAM engine has no transactions"
    whole = subprocess.run([*UNIBACKUP, "backup", url_for(source), "-o", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0, whole.stderr
    assert whole.stderr.count(warning) == 1, whole.stderr
    part = subprocess.run([*UNIBACKUP, "backup", url_for(source), "--table", "cust", "-o", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert part.returncode == 0, part.stderr
    assert "legacy" not in part.stderr, part.stderr


def test_foreign_keys_of_either_object_kind_are_restored(databases):
    """Backups name a foreign key "foreign_key"; "foreign key" (an older spelling) is read too."""
    from unibackup.locations import parse_location
    from unibackup.models import ColumnSchema, DatabaseSchema, SchemaObject, TableSchema
    from unibackup.plugins.mysql import MySQLSource
    from unibackup.source import RestorePlan

    def table(name: str, *columns: str) -> TableSchema:
        body = ",\n".join(f"  `{c}` int NOT NULL" for c in columns) + ",\n  PRIMARY KEY (`id`)"
        return TableSchema(name, tuple(ColumnSchema(c, "int", "integer", nullable=False, primary_key=int(c == "id")) for c in columns),
                           create_sql=f"CREATE TABLE `{name}` (\n{body}\n) ENGINE=InnoDB")

    objects = tuple(
        SchemaObject(kind, f"fk_{child}", f"ALTER TABLE `{child}` ADD CONSTRAINT `fk_{child}` FOREIGN KEY (`p_id`) REFERENCES `p` (`id`)",
                     table=child, options={"columns": ["p_id"], "referenced_table": "p", "referenced_columns": ["id"]})
        for kind, child in (("foreign_key", "c1"), ("foreign key", "c2"))
    )
    schema = DatabaseSchema("mysql", tables=(table("p", "id"), table("c1", "id", "p_id"), table("c2", "id", "p_id")), objects=objects)
    plan = RestorePlan(schema=schema, tables=schema.tables, source_engine="mysql")
    target = databases.new("fk_kinds", create=False)
    restore = MySQLSource(parse_location(url_for(target)))
    try:
        restore.open_restore(plan)
        assert restore.create_schema(plan) == []
        assert restore.finish_schema(plan) == []
        restore.commit()
    finally:
        restore.close()
    with Inspector(target) as inspector:
        names = inspector.rows("SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s ORDER BY 1", (target,))
    assert names == [("fk_c1",), ("fk_c2",)]
