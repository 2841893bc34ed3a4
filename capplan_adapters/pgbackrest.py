"""pgBackRest and the Debian PostgreSQL cluster it backs up: setup, backup, restore, verify.

The cluster holding capplan's store (and Prefect's database, when they share it) is backed up
whole by pgBackRest (Debian's package): base backups, and every WAL segment archived by
PostgreSQL's ``archive_command`` as it fills (``archive_timeout`` forces one at least every
30 s), so a restore can stop at any moment (point-in-time recovery). The configuration is
rendered from the templates in ``deployments/backup/``; the cluster is a Debian one
(``pg_createcluster``), driven with ``pg_ctlcluster``. pgBackRest runs as the cluster's
owner, ``postgres`` (through ``runuser`` when this process is root).

Raises :class:`BackupError` with pgBackRest's own message when a command fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

TEMPLATES = Path(__file__).resolve().parents[1] / "deployments" / "backup"
PG_OWNER = "postgres"


class BackupError(RuntimeError):
    """A pgBackRest or cluster command failed; the message is its output."""


@dataclass(frozen=True)
class Cluster:
    """A Debian PostgreSQL cluster (``pg_lsclusters``): ``version``/``name`` on ``port``."""

    version: str
    name: str
    port: int
    data_dir: Path

    @classmethod
    def find(cls, spec: str) -> Cluster:
        """The cluster ``VERSION/NAME`` (``15/main``) as ``pg_lsclusters`` lists it."""
        version, _, name = spec.partition("/")
        listed = _run(["pg_lsclusters", "-h"]).stdout.splitlines()
        for line in listed:
            cols = line.split()
            if cols[:2] == [version, name]:
                return cls(version, name, int(cols[2]), Path(cols[5]))
        raise BackupError(
            f"no PostgreSQL cluster {spec!r} (pg_lsclusters lists "
            f"{[' '.join(c.split()[:2]) for c in listed]})"
        )

    @property
    def conf_dir(self) -> Path:
        return Path("/etc/postgresql") / self.version / self.name

    def ctl(self, action: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["pg_ctlcluster", self.version, self.name, action, *extra], check=check)

    def accepts_connections(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def sql(self, query: str, database: str = "postgres") -> str:
        """One value from ``psql`` as the owner (trust or peer auth on the local socket)."""
        return _run(
            _as_owner(["psql", "-p", str(self.port), "-d", database, "-Atqc", query])
        ).stdout.strip()


@dataclass(frozen=True)
class Repo:
    """One pgBackRest stanza: its config file, repository and the cluster it backs up."""

    stanza: str
    config: Path
    repo_path: Path
    log_path: Path
    lock_path: Path
    archive_timeout_s: int = 30

    def command(self, *args: str) -> list[str]:
        return _as_owner(
            ["pgbackrest", f"--config={self.config}", f"--stanza={self.stanza}", *args]
        )

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(self.command(*args), check=check)


@dataclass(frozen=True)
class BackupInfo:
    label: str
    kind: str
    started: datetime
    stopped: datetime
    size_bytes: int
    repo_bytes: int
    wal_start: str
    wal_stop: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "type": self.kind,
            "started": self.started.isoformat(),
            "stopped": self.stopped.isoformat(),
            "duration_s": (self.stopped - self.started).total_seconds(),
            "size_bytes": self.size_bytes,
            "repo_bytes": self.repo_bytes,
            "wal_start": self.wal_start,
            "wal_stop": self.wal_stop,
        }


# -- setup -------------------------------------------------------------------------------------
def render(template: str, **values: Any) -> str:
    """A template of ``deployments/backup`` with its ``${name}`` placeholders filled in."""
    return Template((TEMPLATES / template).read_text()).substitute(
        {k: str(v) for k, v in values.items()}
    )


def setup(cluster: Cluster, repo: Repo) -> dict[str, Any]:
    """Write the stanza's config and the cluster's archiving settings, restart the cluster
    (archive_mode needs it), create the stanza and check that WAL reaches the repository.
    Idempotent."""
    for d in (repo.repo_path, repo.log_path, repo.lock_path, repo.config.parent):
        d.mkdir(parents=True, exist_ok=True)
        shutil.chown(d, PG_OWNER, PG_OWNER)
    repo.config.write_text(
        render(
            "pgbackrest.conf",
            repo_path=repo.repo_path,
            log_path=repo.log_path,
            lock_path=repo.lock_path,
            stanza=repo.stanza,
            pg_data=cluster.data_dir,
            pg_port=cluster.port,
        )
    )
    archive = cluster.conf_dir / "conf.d" / f"capplan-archive-{repo.stanza}.conf"
    wanted = render(
        "postgresql-archive.conf",
        config=repo.config,
        stanza=repo.stanza,
        archive_timeout_s=repo.archive_timeout_s,
    )
    t0 = time.monotonic()
    if (
        not archive.exists()
        or archive.read_text() != wanted
        or not cluster.accepts_connections()
        or cluster.sql("SHOW archive_mode") != "on"
    ):
        archive.write_text(wanted)
        cluster.ctl("restart", "-m", "fast")  # archive_mode takes a restart
        wait_accepting(cluster, 60)
    repo.run("stanza-create")
    repo.run("check")
    return {
        "stanza": repo.stanza,
        "config": str(repo.config),
        "archive_settings": str(archive),
        "cluster": f"{cluster.version}/{cluster.name}",
        "restart_s": round(time.monotonic() - t0, 1),
    }


# -- backup and what the repository holds -----------------------------------------------------
def backup(repo: Repo, kind: str = "full") -> BackupInfo:
    """A base backup (``full``, ``diff`` or ``incr``); its record from the repository."""
    if kind not in ("full", "diff", "incr"):
        raise ValueError(f"kind: {kind!r} must be full, diff or incr")
    repo.run("backup", f"--type={kind}")
    return backups(repo)[-1]


def backups(repo: Repo) -> list[BackupInfo]:
    """The stanza's backups, oldest first."""
    raw = json.loads(repo.run("info", "--output=json").stdout or "[]")
    out = []
    for stanza in raw:
        for b in stanza.get("backup", []):
            out.append(
                BackupInfo(
                    label=b["label"],
                    kind=b["type"],
                    started=datetime.fromtimestamp(b["timestamp"]["start"], UTC),
                    stopped=datetime.fromtimestamp(b["timestamp"]["stop"], UTC),
                    size_bytes=int(b["info"]["size"]),
                    repo_bytes=int(b["info"]["repository"]["size"]),
                    wal_start=b["archive"]["start"],
                    wal_stop=b["archive"]["stop"],
                )
            )
    return out


def archived_up_to(cluster: Cluster) -> dict[str, Any]:
    """The archiver's progress on the running cluster: the last segment archived and when."""
    row = cluster.sql(
        "SELECT coalesce(last_archived_wal, ''), coalesce(last_archived_time::text, "
        "''), failed_count FROM pg_stat_archiver"
    )
    wal, at, failed = row.split("|")
    return {
        "last_archived_wal": wal or None,
        "last_archived_at": at or None,
        "failed_count": int(failed),
    }


def switch_wal(cluster: Cluster) -> None:
    """Close the current WAL segment so it is archived now (a restore point for a test)."""
    cluster.sql("SELECT pg_switch_wal()")


# -- restore -----------------------------------------------------------------------------------
def pg_target(at: datetime) -> str:
    """``at`` as pgBackRest's ``--target`` wants it (UTC, with its offset)."""
    if at.tzinfo is None:
        raise ValueError("the restore target needs a time zone")
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def restore(
    cluster: Cluster, repo: Repo, to: datetime | None, *, timeout_s: float = 600
) -> dict[str, Any]:
    """Stop the cluster, restore it from the repository to ``to`` (None: the latest point
    the archived WAL reaches), start it with hot standby off and wait until it accepts writes
    (promoted onto a new timeline): no client reads it before recovery ends. Works on a data
    directory that is gone, empty or damaged (``--delta``).

    Returns the seconds each part took and where recovery stopped: ``replayed_up_to``, the
    commit time of the last transaction restored (PostgreSQL's own
    ``pg_last_xact_replay_timestamp()``), and the new ``timeline``."""
    t0 = time.monotonic()
    if cluster.accepts_connections():
        cluster.ctl("stop", "-m", "immediate", check=False)
    wait_closed(cluster, 60)
    data = cluster.data_dir
    delta = data.is_dir() and any(data.iterdir())
    if not data.is_dir():
        data.mkdir(mode=0o700, parents=True)
        shutil.chown(data, PG_OWNER, PG_OWNER)
    args = ["restore", "--delta"] if delta else ["restore"]
    if to is None:
        args.append("--type=default")
    else:
        args += ["--type=time", f"--target={pg_target(to)}", "--target-action=promote"]
    stopped_s = time.monotonic() - t0
    repo.run(*args)
    restored_s = time.monotonic() - t0
    # hot standby off while it recovers: no client (a Prefect server still running, capplan)
    # may read the database half replayed, where rows committed before the restore point are
    # missing for a moment (a flow run "not found" failed the run waiting on it); pg_ctl waits
    # until recovery has ended and the cluster is promoted
    started = _run(
        [
            "pg_ctlcluster",
            "-o",
            "-c hot_standby=off",
            cluster.version,
            cluster.name,
            "start",
            "--",
            "-t",
            str(max(1, int(timeout_s))),
        ],
        check=False,
    )
    if started.returncode != 0:
        log = started.stderr + started.stdout
        if "before configured recovery target was reached" in log:
            raise BackupError(
                f"the archived WAL ends before {pg_target(to) if to else 'it'}: "
                "restore to an earlier time, or --latest (the cluster is down; "
                "restore again)"
            )
        raise BackupError(f"the restored cluster did not start: {log.strip()[-2000:]}")
    wait_accepting(cluster, timeout_s)
    deadline = time.monotonic() + timeout_s
    while _in_recovery(cluster) != "f":
        if time.monotonic() > deadline:
            raise BackupError(f"cluster {cluster.name} still recovering after {timeout_s} s")
        time.sleep(0.2)
    replayed = cluster.sql("SELECT pg_last_xact_replay_timestamp()")
    timeline = cluster.sql("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")
    return {
        "target": "latest" if to is None else to.isoformat(),
        "delta": delta,
        "stop_s": round(stopped_s, 1),
        "restore_s": round(restored_s - stopped_s, 1),
        "start_s": round(time.monotonic() - t0 - restored_s, 1),
        "total_s": round(time.monotonic() - t0, 1),
        "replayed_up_to": replayed or None,
        "timeline": int(timeline, 16),
    }


# -- is the backup usable? --------------------------------------------------------------------
def verify(repo: Repo) -> dict[str, Any]:
    """``pgbackrest verify``: every backup file and WAL segment of the repository is read
    back and checked against its checksum."""
    done = repo.run("verify", "--log-level-console=info", check=False)
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    return {"ok": done.returncode == 0, "output": lines[-20:]}


def restore_scratch(
    repo: Repo, workdir: Path, checks: dict[str, str], *, pg_version: str, timeout_s: float = 600
) -> dict[str, Any]:
    """Restore the newest backup, with the archived WAL to its end, into a scratch data
    directory under ``workdir``, start a private PostgreSQL on it (its own socket, no TCP,
    no archiving), run ``checks`` (name -> ``database: SQL`` returning one value), stop it and
    delete it. The proof that a backup restores, taken without touching the live cluster."""
    t0 = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.chown(workdir, PG_OWNER, PG_OWNER)
    data = workdir / "scratch-data"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(mode=0o700)
    shutil.chown(data, PG_OWNER, PG_OWNER)
    bin_dir = Path("/usr/lib/postgresql") / pg_version / "bin"
    repo.run("restore", f"--pg1-path={data}", "--type=default", "--archive-mode=off")
    (data / "postgresql.conf").write_text(
        f"listen_addresses = ''\nunix_socket_directories = '{workdir}'\nport = 5999\n"
        # max_connections and the like stay at their defaults: recovery refuses settings lower
        # than the primary's
        "archive_mode = off\nshared_buffers = 32MB\n"
    )
    (data / "pg_hba.conf").write_text("local all all trust\n")
    (data / "pg_ident.conf").write_text("")
    for f in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
        shutil.chown(data / f, PG_OWNER, PG_OWNER)
    restored_s = time.monotonic() - t0
    log = workdir / "scratch.log"
    started = _run(
        _as_owner(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                str(int(timeout_s)),
                "start",
            ]
        ),
        check=False,
    )
    if started.returncode != 0:
        tail = log.read_text()[-1500:] if log.exists() else ""
        shutil.rmtree(data, ignore_errors=True)
        raise BackupError(f"the scratch restore did not start: {tail}")
    results: dict[str, str] = {}
    try:
        deadline = time.monotonic() + timeout_s
        while _psql_scratch(workdir, "postgres", "SELECT pg_is_in_recovery()") != "f":
            if time.monotonic() > deadline:
                raise BackupError("the scratch restore is still recovering")
            time.sleep(0.2)
        for name, spec in checks.items():
            database, _, query = spec.partition(":")
            results[name] = _psql_scratch(workdir, database.strip(), query.strip())
    finally:
        _run(
            _as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
        )
        shutil.rmtree(data, ignore_errors=True)
    return {
        "ok": True,
        "restore_s": round(restored_s, 1),
        "total_s": round(time.monotonic() - t0, 1),
        "checks": results,
    }


def _psql_scratch(socket_dir: Path, database: str, query: str) -> str:
    return _run(
        _as_owner(["psql", "-h", str(socket_dir), "-p", "5999", "-d", database, "-Atqc", query])
    ).stdout.strip()


# -- waiting and running -----------------------------------------------------------------------
def _in_recovery(cluster: Cluster) -> str | None:
    """``pg_is_in_recovery()`` ("t" or "f"), or None while the cluster refuses queries (it
    is still starting up: hot standby is off during a restore)."""
    try:
        return cluster.sql("SELECT pg_is_in_recovery()")
    except BackupError:
        return None


def wait_accepting(cluster: Cluster, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not cluster.accepts_connections():
        if time.monotonic() > deadline:
            raise BackupError(
                f"cluster {cluster.name} not accepting connections on port "
                f"{cluster.port} after {timeout_s:.0f} s"
            )
        time.sleep(0.1)


def wait_closed(cluster: Cluster, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while cluster.accepts_connections():
        if time.monotonic() > deadline:
            raise BackupError(
                f"cluster {cluster.name} still listens on {cluster.port}: stop "
                "it (pg_ctlcluster ... stop) before restoring"
            )
        time.sleep(0.1)


def _as_owner(cmd: list[str]) -> list[str]:
    """Run as the cluster's owner: through ``runuser`` when this process is root."""
    return ["runuser", "-u", PG_OWNER, "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/tmp")
    except FileNotFoundError as err:
        raise BackupError(
            f"{cmd[0]} is not installed (bin/services installs pgbackrest): {err}"
        ) from None
    if check and done.returncode != 0:
        raise BackupError(
            f"{' '.join(cmd)} failed ({done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-2000:]}"
        )
    return done
