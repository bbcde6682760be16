"""localcloud.postgres and localcloud.clinic against real PostgreSQL servers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pg8000.native
import pytest

from localcloud import postgres
from localcloud.clinic import create_master_user, load_clinic
from localcloud.postgres import (
    PostgresError,
    PostgresServer,
    base_backup,
    init_cluster,
    postgres_bin_dir,
    restore_copy,
)

REPO = Path(__file__).resolve().parents[2]


def _pid_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not postgres._pid_alive(pid):
            return True
        time.sleep(0.02)
    return False


def _content_digest(conn: pg8000.native.Connection) -> dict[str, str]:
    """md5 over every row of every clinic table, in primary key order."""
    digests = {}
    for table, key in (
        ("practitioners", "practitioner_id"),
        ("patients", "patient_id"),
        ("appointments", "appointment_id"),
        ("prescriptions", "prescription_id"),
    ):
        digests[table] = conn.run(
            f"SELECT md5(string_agg(t::text, '|' ORDER BY {key})) FROM clinic.{table} t"
        )[0][0]
    return digests


@pytest.fixture
def clinic_db(pg_server: PostgresServer) -> Iterator[tuple[str, str, str]]:
    """A database of its own on the session server with a master user; (db, user, password)."""
    name = f"clinic_{uuid.uuid4().hex[:8]}"
    user, password = f"master_{uuid.uuid4().hex[:6]}", "S3cret-pass:word"
    admin = pg_server.admin_connect()
    admin.run(f"CREATE DATABASE {name}")
    admin.close()
    conn = pg_server.admin_connect(name)
    create_master_user(conn, user, password)
    conn.close()
    yield name, user, password
    admin = pg_server.admin_connect()
    admin.run(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


# ---------------------------------------------------------------------------------------------
# binaries
# ---------------------------------------------------------------------------------------------


def test_bin_dir_picks_the_newest_version_that_has_the_server_binaries(tmp_path: Path) -> None:
    # Given versions 9.6 and 15 with initdb+pg_ctl, and 16 with only client binaries
    for version, binaries in (("9.6", ("initdb", "pg_ctl")), ("15", ("initdb", "pg_ctl"))):
        (tmp_path / version / "bin").mkdir(parents=True)
        for binary in binaries:
            (tmp_path / version / "bin" / binary).touch()
    (tmp_path / "16" / "bin").mkdir(parents=True)
    (tmp_path / "16" / "bin" / "psql").touch()

    # When the bin dir is looked up
    found = postgres_bin_dir(tmp_path)

    # Then 15 wins: numeric ordering (not "9.6" > "15") and 16 lacks initdb
    assert found == tmp_path / "15" / "bin"


def test_missing_binaries_tell_how_to_install_them(tmp_path: Path) -> None:
    # Given no PostgreSQL at all
    # When the bin dir is looked up
    # Then the error names the script that installs it
    with pytest.raises(PostgresError, match=r"scripts/ensure-postgres\.sh"):
        postgres_bin_dir(tmp_path)


# ---------------------------------------------------------------------------------------------
# connections: TLS, scram, admin
# ---------------------------------------------------------------------------------------------


def test_tls_connection_is_encrypted_and_plain_one_is_not(
    pg_server: PostgresServer, clinic_db: tuple[str, str, str]
) -> None:
    db, user, password = clinic_db

    # When the master user connects over TCP with TLS, then without
    tls = pg_server.connect(user, password, db)
    plain = pg_server.connect(user, password, db, ssl=False)
    try:
        tls_row = tls.run("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        plain_row = plain.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        method = tls.run(
            "SELECT client_addr::text, usename FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        )
    finally:
        tls.close()
        plain.close()

    # Then pg_stat_ssl reports TLS for the first only, both over loopback TCP
    assert tls_row[0][0] is True
    assert tls_row[0][1].startswith("TLS")
    assert plain_row[0][0] is False
    assert method[0] == ["127.0.0.1/32", user]


def test_wrong_password_is_refused_with_scram(
    pg_server: PostgresServer, clinic_db: tuple[str, str, str]
) -> None:
    db, user, _ = clinic_db

    # Given the stored password is a scram-sha-256 verifier
    admin = pg_server.admin_connect()
    verifier = admin.run("SELECT rolpassword FROM pg_authid WHERE rolname = :u", u=user)[0][0]
    admin.close()
    assert verifier.startswith("SCRAM-SHA-256$")

    # When the master user connects with a wrong password
    # Then authentication fails (28P01), over TLS and without
    for ssl in (True, False):
        with pytest.raises(pg8000.native.DatabaseError) as excinfo:
            pg_server.connect(user, "not-the-password", db, ssl=ssl)
        assert excinfo.value.args[0]["C"] == "28P01"


def test_server_listens_on_loopback_only_with_small_settings(pg_server: PostgresServer) -> None:
    # When the settings are read through the admin socket
    admin = pg_server.admin_connect()
    try:
        settings = dict(
            admin.run(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(:names)",
                names=[
                    "listen_addresses",
                    "port",
                    "ssl",
                    "data_checksums",
                    "max_connections",
                    "password_encryption",
                ],
            )
        )
        superuser = admin.run("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    finally:
        admin.close()

    # Then the server is what the local cloud promises
    assert settings == {
        "listen_addresses": "127.0.0.1",
        "port": str(pg_server.port),
        "ssl": "on",
        "data_checksums": "on",
        "max_connections": "30",
        "password_encryption": "scram-sha-256",
    }
    assert superuser == [[True]]


def test_dsn_quotes_user_password_and_database(pg_server: PostgresServer) -> None:
    # Given credentials with URL-special characters
    user, password, database = "ops@team", "p:ss/w?rd#1%", "my db"

    # When the DSN is built
    parts = urlsplit(pg_server.dsn(user, password, database))

    # Then a URL parser gets every part back intact
    assert parts.scheme == "postgresql"
    assert unquote(parts.username or "") == user
    assert unquote(parts.password or "") == password
    assert (parts.hostname, parts.port) == ("127.0.0.1", pg_server.port)
    assert unquote(parts.path.lstrip("/")) == database


# ---------------------------------------------------------------------------------------------
# lifecycle
# ---------------------------------------------------------------------------------------------


def test_stop_leaves_no_postmaster_and_is_idempotent(fresh_pg_server: PostgresServer) -> None:
    # Given a running server
    pid = fresh_pg_server.pid
    assert pid is not None
    assert fresh_pg_server in postgres.running_servers()

    # When it is stopped twice
    fresh_pg_server.stop()
    fresh_pg_server.stop()

    # Then its postmaster process is gone and nothing listens on its port
    assert _pid_gone(pid)
    assert not fresh_pg_server.running
    assert fresh_pg_server not in postgres.running_servers()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", fresh_pg_server.port)) != 0

    # And it starts again with its data
    fresh_pg_server.start()
    admin = fresh_pg_server.admin_connect()
    assert admin.run("SELECT 1") == [[1]]
    admin.close()


def test_immediate_stop_then_restart_recovers(fresh_pg_server: PostgresServer) -> None:
    # Given committed data
    admin = fresh_pg_server.admin_connect()
    admin.run("CREATE TABLE kept AS SELECT generate_series(1, 1000) AS n")
    admin.close()

    # When the server is stopped without a checkpoint and started again
    fresh_pg_server.stop(mode="immediate")
    fresh_pg_server.start()

    # Then crash recovery kept the data
    admin = fresh_pg_server.admin_connect()
    assert admin.run("SELECT count(*) FROM kept") == [[1000]]
    admin.close()


def test_destroy_removes_the_data_dir_and_the_process(fresh_pg_server: PostgresServer) -> None:
    pid = fresh_pg_server.pid
    assert pid is not None

    # When the server is destroyed
    fresh_pg_server.destroy()

    # Then neither its process nor its files remain
    assert _pid_gone(pid)
    assert not fresh_pg_server.data_dir.exists()


def test_failed_start_reports_the_server_log(fresh_pg_server: PostgresServer) -> None:
    # Given a server whose configuration became invalid
    fresh_pg_server.stop()
    with (fresh_pg_server.data_dir / "postgresql.conf").open("a") as conf:
        conf.write("\nshared_buffers = 'lots'\n")

    # When it is started
    # Then the error carries the server's own complaint from its log
    with pytest.raises(PostgresError, match="shared_buffers") as excinfo:
        fresh_pg_server.start(timeout=10)
    assert "server log tail" in str(excinfo.value)
    assert not fresh_pg_server.running


def test_start_moves_to_another_port_if_its_own_was_taken(pg_parent_dir: Path) -> None:
    # Given a cluster whose chosen port is taken by someone else before it starts
    server = init_cluster(pg_parent_dir, f"busy-{uuid.uuid4().hex[:8]}")
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", server.port))
    squatter.listen()
    taken = server.port
    try:
        # When it starts
        server.start()

        # Then it runs on a new free port and accepts connections there
        assert server.port != taken
        admin = server.admin_connect()
        assert admin.run("SHOW port") == [[str(server.port)]]
        admin.close()
    finally:
        squatter.close()
        server.destroy()


def test_servers_left_running_are_stopped_when_the_process_exits(pg_parent_dir: Path) -> None:
    # Given a child process that starts a server and exits without stopping it
    script = textwrap.dedent(
        f"""
        import json
        from pathlib import Path
        from localcloud.postgres import init_cluster
        server = init_cluster(Path({str(pg_parent_dir)!r}), "orphan-{uuid.uuid4().hex[:8]}")
        server.start()
        print(json.dumps({{"pid": server.pid, "data_dir": str(server.data_dir)}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=REPO,
    )
    started = json.loads(result.stdout.strip().splitlines()[-1])

    # Then the postmaster died with it (atexit)
    try:
        assert _pid_gone(started["pid"], timeout=10)
    finally:
        postgres.PostgresServer(
            data_dir=Path(started["data_dir"]), port=0, socket_dir=pg_parent_dir
        ).destroy()


# ---------------------------------------------------------------------------------------------
# snapshots
# ---------------------------------------------------------------------------------------------


def test_base_backup_restores_to_the_same_data_on_another_port(
    pg_server: PostgresServer, clinic_db: tuple[str, str, str], pg_parent_dir: Path
) -> None:
    db, user, password = clinic_db
    conn = pg_server.connect(user, password, db)
    counts = load_clinic(conn, patients=300, seed=11)
    digest = _content_digest(conn)
    conn.close()

    # Given a base backup of the running server
    snapshot = base_backup(pg_server, pg_parent_dir / "snapshots" / uuid.uuid4().hex[:8])

    # And a change made after it
    conn = pg_server.connect(user, password, db)
    conn.run("DELETE FROM clinic.prescriptions")
    conn.close()

    # When the snapshot is restored and started
    restored = restore_copy(snapshot, pg_parent_dir, f"restored-{uuid.uuid4().hex[:8]}")
    try:
        restored.start()

        # Then the copy serves the data as of the backup, on its own port, with the same
        # master user and password, and with data checksums
        assert restored.port != pg_server.port
        copy = restored.connect(user, password, db)
        try:
            assert _content_digest(copy) == digest
            assert {t: copy.run(f"SELECT count(*) FROM clinic.{t}")[0][0] for t in counts} == (
                counts
            )
            assert copy.run("SHOW data_checksums") == [["on"]]
            assert copy.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [[True]]
        finally:
            copy.close()
        # And the source is untouched by the copy (it really changed after the backup)
        source = pg_server.connect(user, password, db)
        assert source.run("SELECT count(*) FROM clinic.prescriptions") == [[0]]
        source.close()
    finally:
        restored.destroy()


def test_a_snapshot_can_be_restored_twice_independently(
    fresh_pg_server: PostgresServer, pg_parent_dir: Path
) -> None:
    admin = fresh_pg_server.admin_connect()
    admin.run("CREATE TABLE t AS SELECT 1 AS n")
    admin.close()
    snapshot = base_backup(fresh_pg_server, pg_parent_dir / "snapshots" / uuid.uuid4().hex[:8])

    # When two copies are restored from one snapshot and one of them is changed
    first = restore_copy(snapshot, pg_parent_dir, f"r1-{uuid.uuid4().hex[:8]}")
    second = restore_copy(snapshot, pg_parent_dir, f"r2-{uuid.uuid4().hex[:8]}")
    try:
        first.start()
        second.start()
        conn = first.admin_connect()
        conn.run("INSERT INTO t VALUES (2)")
        conn.close()

        # Then the other copy and the snapshot itself are unaffected
        conn = second.admin_connect()
        assert conn.run("SELECT count(*) FROM t") == [[1]]
        conn.close()
        assert not (snapshot / "postmaster.pid").exists()
        assert (snapshot / "backup_label").exists()
    finally:
        first.destroy()
        second.destroy()


def test_base_backup_of_a_stopped_server_fails_clearly(
    fresh_pg_server: PostgresServer, pg_parent_dir: Path
) -> None:
    fresh_pg_server.stop()
    with pytest.raises(PostgresError, match="not running"):
        base_backup(fresh_pg_server, pg_parent_dir / "snapshots" / uuid.uuid4().hex[:8])


def test_restore_copy_refuses_a_directory_that_is_no_data_dir(
    pg_parent_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(PostgresError, match="not a PostgreSQL data directory"):
        restore_copy(tmp_path, pg_parent_dir, f"nothing-{uuid.uuid4().hex[:8]}")


def test_cluster_without_checksums_or_tls(pg_parent_dir: Path) -> None:
    # Given a cluster made without data checksums and without TLS
    server = init_cluster(
        pg_parent_dir, f"plain-{uuid.uuid4().hex[:8]}", data_checksums=False, ssl=False
    )
    try:
        server.start()
        admin = server.admin_connect()
        admin.run("CREATE ROLE app LOGIN PASSWORD 'app-password'")
        checksums = admin.run("SHOW data_checksums")
        admin.close()

        # Then checksums are off and a TLS connection is refused while a plain one works
        assert checksums == [["off"]]
        with pytest.raises(pg8000.native.InterfaceError, match="refuses SSL"):
            server.connect("app", "app-password")
        server.connect("app", "app-password", ssl=False).close()
    finally:
        server.destroy()


def test_private_key_is_owned_by_the_server_user_with_mode_0600(
    pg_server: PostgresServer,
) -> None:
    key = pg_server.data_dir / "server.key"
    info = key.stat()
    assert info.st_mode & 0o777 == 0o600
    if os.geteuid() == 0:
        assert info.st_uid == postgres._postgres_ids()[0]


# ---------------------------------------------------------------------------------------------
# the clinic
# ---------------------------------------------------------------------------------------------


def test_clinic_is_deterministic_and_sized_by_patients(
    pg_server: PostgresServer, clinic_db: tuple[str, str, str]
) -> None:
    db, user, password = clinic_db
    conn = pg_server.connect(user, password, db)
    try:
        # When the clinic is loaded twice with one seed, then with another
        first = load_clinic(conn, patients=400, seed=3)
        first_digest = _content_digest(conn)
        again = load_clinic(conn, patients=400, seed=3)
        again_digest = _content_digest(conn)
        load_clinic(conn, patients=400, seed=4)
        other_digest = _content_digest(conn)
    finally:
        conn.close()

    # Then the same seed gives the same rows, another seed other rows
    assert first == again
    assert first_digest == again_digest
    assert other_digest["patients"] != first_digest["patients"]
    # And the sizes follow the patient count
    assert first["patients"] == 400
    assert first["appointments"] == 1200
    assert first["practitioners"] == 10
    assert 0 < first["prescriptions"] < first["appointments"]


def test_clinic_schema_has_keys_checks_and_indexes(
    pg_server: PostgresServer, clinic_db: tuple[str, str, str]
) -> None:
    db, user, password = clinic_db
    conn = pg_server.connect(user, password, db)
    try:
        load_clinic(conn, patients=50)
        constraints = conn.run(
            """
            SELECT contype, count(*) FROM pg_constraint
            WHERE connamespace = 'clinic'::regnamespace GROUP BY contype
            """
        )
        indexes = {
            row[0]
            for row in conn.run("SELECT indexname FROM pg_indexes WHERE schemaname = 'clinic'")
        }
        owners = conn.run(
            """
            SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class
            WHERE relnamespace = 'clinic'::regnamespace AND relkind = 'r'
            """
        )

        # Then the constraints hold against bad data
        with pytest.raises(pg8000.native.DatabaseError) as bad_fk:
            conn.run(
                "INSERT INTO clinic.appointments VALUES "
                "(999999, 424242, 1, now(), 30, 'scheduled', now())"
            )
        with pytest.raises(pg8000.native.DatabaseError) as bad_check:
            conn.run(
                "INSERT INTO clinic.appointments VALUES (999999, 1, 1, now(), 30, 'lost', now())"
            )
    finally:
        conn.close()

    kinds = dict(constraints)
    assert kinds["p"] == 4
    assert kinds["f"] == 4
    assert kinds["c"] >= 3
    assert {"appointments_patient_scheduled_idx", "prescriptions_patient_idx"} <= indexes
    assert owners == [[user]]
    assert bad_fk.value.args[0]["C"] == "23503"
    assert bad_check.value.args[0]["C"] == "23514"


def test_master_user_is_not_superuser_but_may_create(
    pg_server: PostgresServer, clinic_db: tuple[str, str, str]
) -> None:
    db, user, password = clinic_db
    admin = pg_server.admin_connect()
    rights = admin.run(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = :u",
        u=user,
    )
    admin.close()
    assert rights == [[False, True, True, True]]

    # When the admin resets the master user with a password full of quotes
    conn = pg_server.admin_connect(db)
    tricky = 'it\'s a "quoted" \\ pass;--'
    create_master_user(conn, user, tricky)
    conn.close()

    # Then exactly that password works
    pg_server.connect(user, tricky, db).close()
    with pytest.raises(pg8000.native.DatabaseError):
        pg_server.connect(user, password, db)
