"""Throwaway PostgreSQL clusters on loopback, the local cloud's RDS data plane: TLS and
scram-sha-256 over TCP on 127.0.0.1, trust over the unix socket for the superuser.

PostgreSQL refuses to run as root, so as root every server-side binary runs through ``runuser -u
postgres --`` in directories ``postgres`` owns (:func:`make_parent_dir`). A snapshot is a
``pg_basebackup`` copy; no server started here outlives the process (:func:`stop_all_started`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pg8000.native

__all__ = [
    "PostgresError",
    "PostgresServer",
    "base_backup",
    "configure_recovery",
    "enable_wal_archiving",
    "ensure_usable_dir",
    "free_port",
    "init_cluster",
    "make_parent_dir",
    "postgres_bin_dir",
    "restore_copy",
    "running_servers",
    "scratch_root",
    "stop_all_started",
    "wait_promoted",
]

POSTGRES_OS_USER = "postgres"
SNAPSHOT_META_FILE = "restoredrill-snapshot.json"
_LOG_TAIL_LINES = 30
# sun_path is 108 bytes on Linux; ".s.PGSQL.65535.lock" needs 20 of them.
_MAX_SOCKET_DIR_LEN = 80


class PostgresError(RuntimeError):
    """A PostgreSQL binary failed or a server did not come up/go down in time."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def postgres_bin_dir(root: Path = Path("/usr/lib/postgresql")) -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl."""
    candidates = [
        bin_dir
        for bin_dir in Path(root).glob("*/bin")
        if (bin_dir / "initdb").is_file() and (bin_dir / "pg_ctl").is_file()
    ]
    if not candidates:
        raise PostgresError(
            f"PostgreSQL server binaries (initdb, pg_ctl) not found under {root}/*/bin: "
            "run scripts/ensure-postgres.sh"
        )
    return max(candidates, key=_version_key)


def _as_root() -> bool:
    return os.geteuid() == 0


def _postgres_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError as exc:  # pragma: no cover - depends on the machine
        raise PostgresError(
            f"running as root needs the OS user {POSTGRES_OS_USER!r}: "
            "run scripts/ensure-postgres.sh"
        ) from exc
    return entry.pw_uid, entry.pw_gid


def _chown_to_postgres(path: Path) -> None:
    if _as_root():
        uid, gid = _postgres_ids()
        os.chown(path, uid, gid)


def _write_file(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    _chown_to_postgres(path)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scratch_root() -> Path | None:
    """$RESTOREDRILL_PG_TMPDIR, else /dev/shm (a restore copies ~20x faster on tmpfs than on a
    disk with ``discard``), else None: the system temp dir."""
    configured = os.environ.get("RESTOREDRILL_PG_TMPDIR")
    if configured:
        return Path(configured)
    shm = Path("/dev/shm")
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    if os.access(shm, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize > 2 * 1024**3:
        return shm
    return None


def make_parent_dir(prefix: str = "restoredrill-pg-") -> Path:
    """A fresh directory (see :func:`scratch_root`) that the server user can use."""
    root = scratch_root()
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    path.chmod(0o755)
    _chown_to_postgres(path)
    return path


def ensure_usable_dir(path: Path) -> None:
    """Create ``path`` if needed and check the server user may write there."""
    path.mkdir(parents=True, exist_ok=True)
    if not _as_root():
        if not os.access(path, os.W_OK | os.X_OK):
            raise PostgresError(f"directory {path} is not writable")
        return
    uid, _ = _postgres_ids()
    if path.stat().st_uid != uid:
        _chown_to_postgres(path)
    probe = subprocess.run(
        ["runuser", "-u", POSTGRES_OS_USER, "--", "test", "-w", str(path), "-a", "-x", str(path)],
        capture_output=True,
        timeout=10,
        check=False,
    )
    if probe.returncode != 0:
        raise PostgresError(
            f"the {POSTGRES_OS_USER!r} user cannot write to {path} (is a parent directory "
            "closed, e.g. 0700?); use localcloud.postgres.make_parent_dir()"
        )


def _tail(path: Path | None, lines: int = _LOG_TAIL_LINES) -> str:
    if path is None or not path.exists():
        return "(no server log)"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(server log unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(server log empty)"


def _run(
    args: Sequence[str],
    *,
    timeout: float,
    what: str,
    log_file: Path | None = None,
    cwd: Path | None = None,
    as_postgres: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a binary (as the postgres user when we are root); raise PostgresError on failure."""
    argv = list(args)
    if as_postgres and _as_root():
        argv = ["runuser", "-u", POSTGRES_OS_USER, "--", *argv]
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PG") and key not in ("LANG", "LANGUAGE")
    }
    env["LC_ALL"] = "C"
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(cwd) if cwd else "/",
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PostgresError(
            f"{what}: timed out after {timeout:.0f}s ({' '.join(argv)})\n"
            f"--- server log tail ---\n{_tail(log_file)}"
        ) from exc
    if result.returncode != 0:
        raise PostgresError(
            f"{what}: exit code {result.returncode} ({' '.join(argv)})\n"
            f"--- stderr ---\n{result.stderr.strip()}\n"
            f"--- server log tail ---\n{_tail(log_file)}"
        )
    return result


_registry_lock = threading.Lock()
_started: set[PostgresServer] = set()


def running_servers() -> list[PostgresServer]:
    with _registry_lock:
        return [server for server in _started if server.running]


def stop_all_started() -> None:
    """Stop (immediate) every server this process started and did not stop. Registered at exit."""
    with _registry_lock:
        servers = list(_started)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop(mode="immediate")


atexit.register(stop_all_started)


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live (non-zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # "pid (comm) S ..." - comm may contain spaces and parentheses
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


class PostgresServer:
    """One cluster (data directory) and, once started, its postmaster."""

    host: str = "127.0.0.1"

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int,
        socket_dir: Path,
        superuser: str = "postgres",
        log_file: Path | None = None,
        auto_port: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.socket_dir = Path(socket_dir)
        self.superuser = superuser
        self.log_file = log_file or self.data_dir.parent / f"{self.data_dir.name}.log"
        self.name = self.data_dir.name
        # a port we chose ourselves may be re-chosen if somebody grabbed it meanwhile
        self._auto_port = auto_port
        self._pid: int | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        state = f"pid {self._pid}" if self.running else "stopped"
        return f"PostgresServer({self.name!r}, port={self.port}, {state})"

    @property
    def pid(self) -> int | None:
        return self._read_pid() if self.running else None

    def _read_pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            first = pid_file.read_text().splitlines()[0].strip()
            return int(first)
        except (OSError, IndexError, ValueError):
            return None

    @property
    def running(self) -> bool:
        pid = self._read_pid() or self._pid
        return pid is not None and _pid_alive(pid)

    def start(self, timeout: float = 30) -> None:
        """Start the postmaster (``pg_ctl start -w``) on 127.0.0.1:port; return once it accepts."""
        with self._lock:
            if self.running:
                return
            if not self.data_dir.is_dir():
                raise PostgresError(f"no data directory at {self.data_dir}")
            attempts = 3 if self._auto_port else 1
            for attempt in range(attempts):
                try:
                    self._pg_ctl_start(timeout)
                    break
                except PostgresError as exc:
                    port_taken = "could not bind" in str(exc) or "already in use" in str(exc)
                    if attempt + 1 < attempts and port_taken:
                        self.port = free_port()
                        continue
                    raise
            self._pid = self._read_pid()
            with _registry_lock:
                _started.add(self)

    def _pg_ctl(self, command: str, *args: str, timeout: float, what: str) -> None:
        pg_ctl = [
            str(postgres_bin_dir() / "pg_ctl"),
            command,
            "-w",
            "-t",
            str(int(max(timeout, 1))),
        ]
        _run(
            [*pg_ctl, "-D", str(self.data_dir), *args],
            timeout=timeout + 10,
            what=what,
            log_file=self.log_file,
            cwd=self.data_dir.parent,
        )

    def _pg_ctl_start(self, timeout: float) -> None:
        ensure_usable_dir(self.socket_dir)
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories='{self.socket_dir}'"
        )
        what = f"starting PostgreSQL {self.name} on port {self.port}"
        self._pg_ctl("start", "-l", str(self.log_file), "-o", options, timeout=timeout, what=what)

    def stop(self, mode: str = "fast", timeout: float = 30) -> None:
        """Stop the postmaster (``fast``, ``smart`` or ``immediate``). Idempotent."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown shutdown mode {mode!r}")
        with self._lock:
            pid = self._read_pid() or self._pid
            try:
                if pid is not None and _pid_alive(pid):
                    self._stop_running(pid, mode, timeout)
            finally:
                if not self.running:
                    self._pid = None
                    with _registry_lock:
                        _started.discard(self)

    def _stop_running(self, pid: int, mode: str, timeout: float) -> None:
        try:
            self._pg_ctl(
                "stop", "-m", mode, timeout=timeout, what=f"stopping PostgreSQL {self.name}"
            )
        except PostgresError:
            if not _pid_alive(pid):
                return
            # pg_ctl could not do it (data dir gone, hang...): the postmaster must go anyway
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
            if not _wait_gone(pid, 5):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)
            if _pid_alive(pid):
                raise
            return
        if not _wait_gone(pid, timeout):
            raise PostgresError(f"postmaster {pid} of {self.name} still alive after stop")

    def destroy(self) -> None:
        self.stop(mode="immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.log_file.unlink()

    @property
    def unix_socket_path(self) -> Path:
        return self.socket_dir / f".s.PGSQL.{self.port}"

    def admin_connect(
        self, database: str = "postgres", *, timeout: float = 10
    ) -> pg8000.native.Connection:
        """The superuser over the unix socket (trust)."""
        return pg8000.native.Connection(
            user=self.superuser,
            database=database,
            unix_sock=str(self.unix_socket_path),
            ssl_context=False,
            timeout=timeout,
            application_name="localcloud-admin",
        )

    def connect(
        self,
        user: str,
        password: str,
        database: str = "postgres",
        ssl: bool = True,
        *,
        timeout: float = 10,
    ) -> pg8000.native.Connection:
        """A client over TCP 127.0.0.1 with scram-sha-256; TLS (not verified) unless ssl=False."""
        return pg8000.native.Connection(
            user=user,
            password=password,
            host=self.host,
            port=self.port,
            database=database,
            ssl_context=_client_ssl_context() if ssl else False,
            timeout=timeout,
        )

    def dsn(self, user: str, password: str, database: str = "postgres") -> str:
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database, safe='')}?sslmode=require"
        )


def _client_ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.02)
    return not _pid_alive(pid)


_cert_lock = threading.Lock()


def _ensure_certificate(parent_dir: Path) -> tuple[Path, Path]:
    """One self-signed certificate per parent directory, made once and reused."""
    cert_dir = parent_dir / "tls"
    cert, key = cert_dir / "server.crt", cert_dir / "server.key"
    with _cert_lock:
        if cert.exists() and key.exists():
            return cert, key
        cert_dir.mkdir(exist_ok=True)
        files = ["-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)]
        _run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", *files],
            timeout=60,
            what="making a self-signed TLS certificate",
            as_postgres=False,
        )
        key.chmod(0o600)
        cert.chmod(0o644)
        for path in (cert_dir, cert, key):
            _chown_to_postgres(path)
    return cert, key


def _socket_dir_for(parent_dir: Path) -> Path:
    candidate = parent_dir / "sock"
    if len(str(candidate)) <= _MAX_SOCKET_DIR_LEN:
        return candidate
    return Path(tempfile.mkdtemp(prefix="pgsock-"))


def _conf_value(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def _append_conf(path: Path, settings: dict[str, str | int], header: str) -> None:
    lines = [f"\n# --- {header} ---"]
    lines += [f"{key} = {_conf_value(value)}" for key, value in settings.items()]
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


_template_lock = threading.Lock()
_templates: dict[tuple[str, bool], Path] = {}
_template_root: Path | None = None


def _remove_templates() -> None:
    if _template_root is not None:
        shutil.rmtree(_template_root, ignore_errors=True)


def _initdb_template(superuser: str, data_checksums: bool, timeout: float) -> Path:
    """A pristine ``initdb`` output, made once per process and copied (~0.05 s, initdb takes
    ~0.7 s) for each new cluster; the copies share a system identifier, which nothing relies on."""
    global _template_root
    key = (superuser, data_checksums)
    with _template_lock:
        if key in _templates and (_templates[key] / "PG_VERSION").exists():
            return _templates[key]
        if _template_root is None or not _template_root.exists():
            _template_root = make_parent_dir("restoredrill-initdb-")
            atexit.register(_remove_templates)
        target = _template_root / f"{superuser}-{'checksums' if data_checksums else 'plain'}"
        shutil.rmtree(target, ignore_errors=True)
        settings = [
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ]
        args = [str(postgres_bin_dir() / "initdb"), "-D", str(target), "-U", superuser, *settings]
        args += ["--no-sync", "--no-instructions"]
        if data_checksums:
            args.append("--data-checksums")
        _run(args, timeout=timeout, what=f"initdb {target}", cwd=_template_root)
        _templates[key] = target
        return target


def init_cluster(
    parent_dir: Path,
    name: str,
    *,
    superuser: str = "postgres",
    data_checksums: bool = True,
    ssl: bool = True,
    port: int | None = None,
    timeout: float = 120,
) -> PostgresServer:
    """``initdb`` a new cluster at ``parent_dir/name`` (not started)."""
    parent_dir = Path(parent_dir)
    ensure_usable_dir(parent_dir)
    data_dir = parent_dir / name
    if data_dir.exists():
        raise PostgresError(f"{data_dir} already exists")
    socket_dir = _socket_dir_for(parent_dir)
    ensure_usable_dir(socket_dir)
    log_file = parent_dir / f"{name}.log"
    template = _initdb_template(superuser, data_checksums, timeout)
    _run(
        ["cp", "-a", str(template), str(data_dir)],
        timeout=timeout,
        what=f"copying a fresh cluster to {data_dir}",
        cwd=parent_dir,
    )

    chosen_port = port or free_port()
    settings: dict[str, str | int] = {
        "listen_addresses": "127.0.0.1",
        "port": chosen_port,
        "unix_socket_directories": str(socket_dir),
        "max_connections": 30,
        "shared_buffers": "16MB",
        "fsync": "off",
        "max_wal_senders": 4,
        "wal_level": "replica",
        "password_encryption": "scram-sha-256",
        "log_line_prefix": "%m [%p] %q%u@%d ",
        "log_min_messages": "warning",
        "dynamic_shared_memory_type": "posix",
    }
    if ssl:
        cert, key = _ensure_certificate(parent_dir)
        # copied into the data dir (relative paths) so base backups and restores carry them
        shutil.copyfile(cert, data_dir / "server.crt")
        shutil.copyfile(key, data_dir / "server.key")
        for file, mode in ((data_dir / "server.crt", 0o644), (data_dir / "server.key", 0o600)):
            file.chmod(mode)
            _chown_to_postgres(file)
        settings.update({"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"})
    else:
        settings["ssl"] = "off"
    _append_conf(data_dir / "postgresql.conf", settings, "localcloud")
    hba = "\n".join(
        [
            "# localcloud: trust for the superuser over the unix socket, scram over TCP",
            "local   all             all                                     trust",
            f"local   replication     {superuser:<15} trust",
            "hostssl all             all             127.0.0.1/32            scram-sha-256",
            "host    all             all             127.0.0.1/32            scram-sha-256",
            "",
        ]
    )
    _write_file(data_dir / "pg_hba.conf", hba)
    return PostgresServer(
        data_dir=data_dir,
        port=chosen_port,
        socket_dir=socket_dir,
        superuser=superuser,
        log_file=log_file,
        auto_port=port is None,
    )


def base_backup(server: PostgresServer, target_dir: Path, *, timeout: float = 300) -> Path:
    """Physical copy of a running ``server`` into ``target_dir`` (absent or empty)."""
    target_dir = Path(target_dir)
    if not server.running:
        raise PostgresError(f"base backup of {server.name}: the server is not running")
    ensure_usable_dir(target_dir.parent)
    source = ["-h", str(server.socket_dir), "-p", str(server.port), "-U", server.superuser]
    fast = ["-X", "stream", "-c", "fast", "--no-sync", "--no-password"]
    _run(
        [str(postgres_bin_dir() / "pg_basebackup"), "-D", str(target_dir), *fast, *source],
        timeout=timeout,
        what=f"pg_basebackup of {server.name} into {target_dir}",
        log_file=server.log_file,
        cwd=target_dir.parent,
    )
    meta = {"superuser": server.superuser, "source": server.name, "taken_at": time.time()}
    _write_file(target_dir / SNAPSHOT_META_FILE, json.dumps(meta), mode=0o600)
    return target_dir


def restore_copy(
    snapshot_dir: Path,
    parent_dir: Path,
    name: str,
    *,
    port: int | None = None,
    timeout: float = 300,
) -> PostgresServer:
    """Copy a :func:`base_backup` into ``parent_dir/name`` as a new cluster (not started)."""
    snapshot_dir = Path(snapshot_dir)
    parent_dir = Path(parent_dir)
    if not (snapshot_dir / "PG_VERSION").is_file():
        raise PostgresError(f"{snapshot_dir} is not a PostgreSQL data directory copy")
    ensure_usable_dir(parent_dir)
    data_dir = parent_dir / name
    if data_dir.exists():
        raise PostgresError(f"{data_dir} already exists")
    _run(
        ["cp", "-a", str(snapshot_dir), str(data_dir)],
        timeout=timeout,
        what=f"copying snapshot {snapshot_dir} to {data_dir}",
        cwd=parent_dir,
    )
    superuser = "postgres"
    meta_file = data_dir / SNAPSHOT_META_FILE
    if meta_file.exists():
        superuser = json.loads(meta_file.read_text()).get("superuser", superuser)
    for leftover in ("postmaster.pid", "postmaster.opts", "standby.signal", "recovery.signal"):
        with contextlib.suppress(FileNotFoundError):
            (data_dir / leftover).unlink()
    socket_dir = _socket_dir_for(parent_dir)
    ensure_usable_dir(socket_dir)
    chosen_port = port or free_port()
    _append_conf(
        data_dir / "postgresql.auto.conf",
        {
            "port": chosen_port,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(socket_dir),
            # A copy of a source that archives its WAL must never archive into the source's
            # archive: its segments would carry the same names on the same timeline.
            "archive_mode": "off",
        },
        "localcloud restore",
    )
    _chown_to_postgres(data_dir / "postgresql.auto.conf")
    return PostgresServer(
        data_dir=data_dir,
        port=chosen_port,
        socket_dir=socket_dir,
        superuser=superuser,
        log_file=parent_dir / f"{name}.log",
        auto_port=port is None,
    )


# ------------------------------------------------------------------------- point-in-time recovery


def _plain_path(path: Path) -> str:
    """A path that may stand unquoted in archive_command and restore_command."""
    text = str(path)
    if not re.fullmatch(r"[A-Za-z0-9/._+-]+", text):
        raise PostgresError(f"{text!r}: a WAL archive path must be plain (no spaces or quotes)")
    return text


def enable_wal_archiving(server: PostgresServer, archive_dir: Path) -> None:
    """Archive every completed WAL segment of ``server`` into ``archive_dir`` (never overwriting
    one), then restart it: archive_mode only changes at start."""
    archive = _plain_path(archive_dir)
    ensure_usable_dir(archive_dir)
    admin = server.admin_connect()
    try:
        admin.run("ALTER SYSTEM SET archive_mode = on")
        admin.run(
            f"ALTER SYSTEM SET archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'"
        )
    finally:
        admin.close()
    server.stop()
    server.start()


def configure_recovery(server: PostgresServer, archive_dir: Path, target: datetime) -> None:
    """Make a copy of a base backup (not started) recover to ``target``: WAL from
    ``archive_dir`` (restore_command), stop before the first commit after the target, promote
    (PostgreSQL 12+: recovery.signal and settings in the configuration)."""
    _append_conf(
        server.data_dir / "postgresql.auto.conf",
        {
            "restore_command": f"cp {_plain_path(archive_dir)}/%f %p",
            "recovery_target_time": target.astimezone(UTC).isoformat(),
            "recovery_target_action": "promote",
        },
        "localcloud point-in-time recovery",
    )
    _write_file(server.data_dir / "recovery.signal", "")


def wait_promoted(server: PostgresServer, timeout: float = 120) -> None:
    """Return once ``server`` has finished recovery and been promoted; raise PostgresError with
    the server's own words when recovery stops first (e.g. the WAL to reach the target is
    missing, and the server shuts down)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.running:
            fatal = [line for line in _tail(server.log_file, 200).splitlines() if "FATAL" in line]
            raise PostgresError(
                "recovery stopped before the target: "
                + (" / ".join(fatal[-2:]) or _tail(server.log_file))
            )
        with contextlib.suppress(Exception):
            admin = server.admin_connect(timeout=5)
            try:
                ((in_recovery,),) = admin.run("SELECT pg_is_in_recovery()")
            finally:
                admin.close()
            if not in_recovery:
                return
        time.sleep(0.2)
    raise PostgresError(f"recovery of {server.name} did not finish within {timeout:.0f}s")
