"""What the db tests share: the checker's login role, SQL run as the cluster's superuser, and the
connection the check suite gets."""

from __future__ import annotations

from pydantic import SecretStr
from restoredrill.checksuite import ConnectionTarget

from localcloud.postgres import PostgresServer

CHECKER = "rd_checker"
PASSWORD = "Checker-Pass-7f3a!"


def run_sql(server: PostgresServer, database: str, *statements: str) -> list[list[object]]:
    """Run the statements as the superuser, one connection; the last statement's rows."""
    connection = server.admin_connect(database)
    try:
        rows: list[list[object]] = []
        for statement in statements:
            rows = connection.run(statement)
        return rows
    finally:
        connection.close()


def ensure_checker(server: PostgresServer, user: str = CHECKER, password: str = PASSWORD) -> None:
    """The role the check suite logs in as, created once per cluster."""
    if not run_sql(server, "postgres", f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'"):
        run_sql(server, "postgres", f"CREATE ROLE {user} LOGIN SUPERUSER PASSWORD '{password}'")


def checker_target(server: PostgresServer, database: str, **changes: object) -> ConnectionTarget:
    """The connection the check suite gets for ``database``, as the checker role."""
    fields: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "user": CHECKER,
        "password": SecretStr(PASSWORD),
        "database": database,
    }
    return ConnectionTarget.model_validate(fields | changes)
