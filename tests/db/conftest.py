"""Real PostgreSQL servers for the db tests (and for anyone who needs one).

Fixtures:
- ``pg_parent_dir``   session directory the server user can write to (clusters, snapshots, logs)
- ``pg_server``       session-scoped started cluster with data checksums; do not stop or break it
- ``fresh_pg_server`` a started cluster of the test's own, which it may stop, corrupt, restart

Missing PostgreSQL binaries fail the tests (they are never skipped): run
``scripts/ensure-postgres.sh``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.postgres import (
    PostgresError,
    PostgresServer,
    init_cluster,
    make_parent_dir,
    postgres_bin_dir,
)


def _require_binaries() -> None:
    try:
        postgres_bin_dir()
    except PostgresError as exc:
        pytest.fail(f"{exc} (the db tests need real PostgreSQL binaries; they are not skipped)")


@pytest.fixture(scope="session")
def pg_parent_dir() -> Iterator[Path]:
    """A session directory owned by the server user (``postgres`` when we run as root)."""
    _require_binaries()
    parent = make_parent_dir("restoredrill-tests-")
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(pg_parent_dir: Path) -> Iterator[PostgresServer]:
    """One started cluster (data checksums on) shared by the session; removed at the end."""
    server = init_cluster(pg_parent_dir, "session", data_checksums=True)
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def fresh_pg_server(pg_parent_dir: Path) -> Iterator[PostgresServer]:
    """A started cluster for this test only: it may be stopped, corrupted, restarted."""
    server = init_cluster(pg_parent_dir, f"fresh-{uuid.uuid4().hex[:8]}", data_checksums=True)
    server.start()
    yield server
    server.destroy()
