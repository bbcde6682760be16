"""Level 0 (connect) and the instance-wide part of level 1 (roles): does the restored instance
accept logins over TLS, which server is it, is it out of recovery, which databases does it hold."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from restoredrill.checksuite.connection import CheckConnection
from restoredrill.checksuite.results import CheckResult, CheckStatus, ConnectionTarget, capped
from restoredrill.ports.baseline import Baseline
from restoredrill.ports.policy import DrillPolicy

__all__ = ["INSTANCE_SQL", "InstanceInfo", "instance_checks", "read_instance", "roles_check"]

INSTANCE_SQL = """
SELECT json_build_object(
  'server_version', current_setting('server_version'),
  'server_version_num', current_setting('server_version_num')::int,
  'in_recovery', pg_is_in_recovery(),
  'ssl', (SELECT row_to_json(s) FROM (
            SELECT ssl, version, cipher, bits FROM pg_stat_ssl WHERE pid = pg_backend_pid()
          ) AS s),
  'databases', (SELECT coalesce(json_agg(json_build_object(
                    'name', d.datname, 'allow_connections', d.datallowconn,
                    'template', d.datistemplate,
                    'size_bytes', CASE WHEN has_database_privilege(d.oid, 'CONNECT')
                                       THEN pg_database_size(d.oid) END)
                  ORDER BY d.datname), '[]') FROM pg_database AS d),
  'roles', (SELECT coalesce(json_agg(r.rolname ORDER BY r.rolname), '[]')
              FROM pg_roles AS r WHERE r.rolname !~ '^pg_'),
  'user', current_user,
  'superuser', (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = current_user)
)::text
"""


@dataclass
class InstanceInfo:
    server_version: str
    server_version_num: int
    in_recovery: bool
    ssl: dict[str, Any] | None
    databases: list[dict[str, Any]]
    roles: list[str]
    user: str
    superuser: bool

    @property
    def connectable(self) -> list[str]:
        """Non-template databases that accept connections."""
        return [d["name"] for d in self.databases if d["allow_connections"] and not d["template"]]


def read_instance(connection: CheckConnection) -> InstanceInfo:
    value = connection.scalar(INSTANCE_SQL)
    document: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    return InstanceInfo(
        server_version=str(document["server_version"]),
        server_version_num=int(document["server_version_num"]),
        in_recovery=bool(document["in_recovery"]),
        ssl=document.get("ssl"),
        databases=list(document["databases"]),
        roles=list(document["roles"]),
        user=str(document["user"]),
        superuser=bool(document.get("superuser")),
    )


def databases_to_check(info: InstanceInfo, policy: DrillPolicy) -> list[str]:
    return [name for name in info.connectable if policy.wants_database(name)]


def instance_checks(
    info: InstanceInfo,
    target: ConnectionTarget,
    policy: DrillPolicy,
    baseline: Baseline | None,
    duration_ms: float,
) -> list[CheckResult]:
    results: list[CheckResult] = []
    ssl = info.ssl or {}
    if ssl.get("ssl"):
        results.append(
            CheckResult(
                name="tls",
                level=0,
                status=CheckStatus.PASS,
                message=f"TLS {ssl.get('version')} ({ssl.get('cipher')}, {ssl.get('bits')} bits)",
                evidence={k: ssl.get(k) for k in ("version", "cipher", "bits")},
            )
        )
    elif target.ssl == "disable":
        results.append(
            CheckResult(
                name="tls",
                level=0,
                status=CheckStatus.WARN,
                message="TLS not used: the connection was made with ssl=disable",
                evidence={"ssl": False},
            )
        )
    else:
        results.append(
            CheckResult(
                name="tls",
                level=0,
                status=CheckStatus.FAIL,
                message="the server reports this connection is not encrypted",
                evidence={"ssl": False},
            )
        )

    version_evidence: dict[str, Any] = {
        "server_version": info.server_version,
        "server_version_num": info.server_version_num,
    }
    message = f"PostgreSQL {info.server_version}"
    if baseline is not None and baseline.server_version:
        version_evidence["baseline_server_version"] = baseline.server_version
        if baseline.server_version != info.server_version:
            message += f" (last drill: {baseline.server_version})"
    results.append(
        CheckResult(
            name="server_version",
            level=0,
            status=CheckStatus.PASS,
            message=message,
            evidence=version_evidence,
            duration_ms=duration_ms,
        )
    )
    results.append(
        CheckResult(
            name="not_in_recovery",
            level=0,
            status=CheckStatus.FAIL if info.in_recovery else CheckStatus.PASS,
            message=(
                "the server is still in recovery (read-only standby or unfinished restore)"
                if info.in_recovery
                else "the server is out of recovery and accepts writes"
            ),
            evidence={"pg_is_in_recovery": info.in_recovery},
        )
    )
    results.append(_databases_check(info, policy, baseline))
    return results


def _databases_check(
    info: InstanceInfo, policy: DrillPolicy, baseline: Baseline | None
) -> CheckResult:
    present = info.connectable
    checked = databases_to_check(info, policy) if policy.level >= 1 else []
    problems: list[str] = []
    status = CheckStatus.PASS
    missing_policy = [name for name in (policy.include_databases or []) if name not in present]
    if missing_policy:
        problems.append("listed in the policy but not found: " + ", ".join(missing_policy))
        status = CheckStatus.FAIL
    missing_baseline: list[str] = []
    if baseline is not None and baseline.database_names:
        missing_baseline = [name for name in baseline.database_names if name not in present]
        if missing_baseline:
            problems.append(
                "present at the last drill but not found: " + ", ".join(missing_baseline)
            )
            if policy.schema_drift.on_missing == "fail":
                status = CheckStatus.FAIL
            elif status is CheckStatus.PASS:
                status = CheckStatus.WARN
    if policy.level >= 1 and not checked and status is CheckStatus.PASS:
        status = CheckStatus.ERROR
        problems.append("no database to check (every database is excluded or refuses connections)")
    sizes = {d["name"]: d["size_bytes"] for d in info.databases if not d["template"]}
    message = f"{len(present)} database(s): {', '.join(present)}"
    if checked and checked != present:
        message += f"; checking {', '.join(checked)}"
    if problems:
        message = "; ".join(problems) + f" ({message})"
    return CheckResult(
        name="databases",
        level=0,
        status=status,
        message=message,
        evidence={
            "databases": present,
            "checked": checked,
            "size_bytes": sizes,
            "missing_from_policy": missing_policy,
            "missing_since_baseline": missing_baseline,
            "not_connectable": [
                d["name"]
                for d in info.databases
                if not d["allow_connections"] and not d["template"]
            ],
        },
    )


def roles_check(info: InstanceInfo, policy: DrillPolicy, baseline: Baseline | None) -> CheckResult:
    evidence: dict[str, Any] = {"roles": capped(info.roles, 200), "count": len(info.roles)}
    status = CheckStatus.PASS
    message = f"{len(info.roles)} role(s)"
    if baseline is not None and baseline.roles is not None:
        missing = [role for role in baseline.roles if role not in info.roles]
        added = [role for role in info.roles if role not in baseline.roles]
        evidence["missing"] = capped(missing)
        evidence["added"] = capped(added)
        if missing:
            status = {
                "fail": CheckStatus.FAIL,
                "warn": CheckStatus.WARN,
                "pass": CheckStatus.PASS,
            }[policy.schema_drift.on_missing_role]
            message = f"{len(missing)} role(s) missing since the last drill: " + ", ".join(
                capped(missing, 10)
            )
        if added:
            message += f"; {len(added)} new: " + ", ".join(capped(added, 10))
    return CheckResult(name="roles", level=1, status=status, message=message, evidence=evidence)
