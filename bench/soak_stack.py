"""The deployed stack the soak runs, all on this machine and all real (bench/soak.py):

- a private PostgreSQL cluster (port 5439, the restart tests' own: restarting it hurts no one
  else) holding capplan's store and Prefect's database;
- a private Redis (no persistence) holding the RQ queues;
- ``prefect server start`` on that PostgreSQL, restartable on the same port;
- supervisord running two groups of real ``rq worker`` processes, one per queue;
- the deployments of ``prefect.yaml`` (the soak's schedules: a cycle every ``cycle_s``,
  collection every ``collect_s``, the apply-due sweeper every minute), deployed with
  ``prefect deploy --all`` onto two process work pools as prefect.yaml splits them: the
  steps' writers (apply-step, apply-due) in the scaling pool, everything else in the planning
  pool; a ``prefect worker`` for each, the planning one with ``CAPPLAN_POOL_ROLE=planning``
  (it cannot scale: it hands every step to an apply-step run), the scaling one with
  ``CAPPLAN_POOL_ROLE=scaling`` (docs/security.md, "Two work pools").
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capplan_app.live.harness import free_port, rq_program  # noqa: E402
from tests.integration.faults.restart_services import (  # noqa: E402
    PG_ADMIN,
    PrivateRedis,
    ensure_pg_cluster,
    restart_pg,
    wait_port,
)
from tests.prefect_pg import asyncpg_url  # noqa: E402
from tests.service_helpers import PrefectServerProcess, scratch_database  # noqa: E402

VENV_BIN = Path(sys.executable).parent
#: the soak's planning pool and scaling pool (prefect.yaml's capplan-process and
#: capplan-scaling: the deployments keep prefect.yaml's split)
POOL = "soak"
SCALING_POOL = "soak-scaling"
PREFECT_SCALING_POOL = "capplan-scaling"
APPROVER = "soak-approver"
QUEUES = {"live": "auto", "gated": "manual"}  # queue -> its policy's mode


@dataclass
class SoakConfig:
    """The compressed day (times in seconds, rates in jobs/s)."""

    minutes: float = 60.0
    cycle_s: int = 300
    collect_s: int = 20
    sweep_s: int = 60
    job_s: float = 0.5
    low_rate: float = 2.0
    high_rate: float = 9.0
    numprocs: int = 10
    slo_wait_p95_s: float = 5.0
    startup_s: float = 30.0
    horizon_hours: float = 0.5
    approval_timeout_s: float = 240.0
    history_days: int = 4
    seed: int = 21


@dataclass
class Stack:
    """Handles on the running services and what the soak and the checker need."""

    workdir: Path
    cfg: SoakConfig
    store_url: str = ""
    prefect_db_url: str = ""
    redis: PrivateRedis | None = None
    prefect: PrefectServerProcess | None = None
    supervisord: subprocess.Popen[bytes] | None = None
    supervisor_url: str = ""
    supervisor_password: str = ""
    #: the planning pool's worker and the scaling pool's
    worker: subprocess.Popen[bytes] | None = None
    scaling_worker: subprocess.Popen[bytes] | None = None
    worker_env: dict[str, str] = field(default_factory=dict)
    tid: str = field(default_factory=lambda: f"soak{uuid.uuid4().hex[:8]}")
    _dbs: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    # -- the pieces ---------------------------------------------------------------------
    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ensure_pg_cluster()
        self.start_on(PG_ADMIN, "soak")

    def start_on(self, admin_url: str, prefix: str) -> None:
        """Both databases (``<prefix>_store``, ``<prefix>_prefect``) on the cluster behind
        ``admin_url``, a private Redis, the Prefect server on its database, supervisord."""
        self.store_url = self._dbs.enter_context(scratch_database(admin_url, f"{prefix}_store"))
        self.prefect_db_url = self._dbs.enter_context(
            scratch_database(admin_url, f"{prefix}_prefect")
        )
        self.redis = PrivateRedis()
        self.redis.start()
        self.prefect = PrefectServerProcess(
            self.workdir / "prefect-home",
            kill_signal=9,
            args=("--no-ui",),
            env={
                "PREFECT_API_DATABASE_CONNECTION_URL": asyncpg_url(self.prefect_db_url),
                "PREFECT_SERVER_UI_ENABLED": "false",
                "PREFECT_LOGGING_LEVEL": "WARNING",
            },
        )
        self.prefect.start()
        self._start_supervisord()

    @property
    def api_url(self) -> str:
        assert self.prefect is not None
        return self.prefect.api_url

    def queue(self, name: str) -> str:
        return f"soak_{name}_{self.tid}"

    def env(self) -> dict[str, str]:
        """capplan's and Prefect's settings for every process of the stack."""
        assert self.redis is not None
        return {
            "PREFECT_API_URL": self.api_url,
            "CAPPLAN_DATABASE_URL": self.store_url,
            "CAPPLAN_REDIS_URL": self.redis.url,
            "CAPPLAN_SCALER": "supervisor",
            "CAPPLAN_SUPERVISOR_URL": self.supervisor_url,
            "CAPPLAN_SUPERVISOR_USERNAME": "capplan",
            "CAPPLAN_SUPERVISOR_PASSWORD": self.supervisor_password,
            "CAPPLAN_HOME": str(ROOT),
            # every process imports capplan from this checkout (ahead of the venv's editable
            # install): a soak run from a git worktree is immune to edits in the main tree
            "PYTHONPATH": str(ROOT),
            "CAPPLAN_DATA_DIR": str(self.workdir / "data"),
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            # heartbeats every 30 s: deployments/prefect/automation-crash-zombie-runs.yaml crashes a run
            # silent for 90 s, which frees its deployment's concurrency slot
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "GX_ANALYTICS_ENABLED": "false",
            "MPLBACKEND": "Agg",
            "CAPPLAN_BLAS_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }

    def supervisor(self) -> Any:
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport("capplan", self.supervisor_password, self.supervisor_url)
        return xmlrpc.client.ServerProxy(self.supervisor_url, transport=transport)

    def _start_supervisord(self) -> None:
        assert self.redis is not None
        port = free_port()
        self.supervisor_password = f"pw-{uuid.uuid4().hex}"
        self.supervisor_url = f"http://127.0.0.1:{port}/RPC2"
        # a Redis restart makes the workers exit until it is back: keep restarting them
        programs = "".join(
            "\n"
            + rq_program(
                name,
                self.queue(name),
                self.redis.url,
                self.tid,
                self.cfg.numprocs,
                self.workdir,
                start_retries=1000,
            )
            for name in QUEUES
        )
        conf = self.workdir / "supervisord.conf"
        conf.write_text(f"""[supervisord]
nodaemon=true
logfile={self.workdir}/supervisord.log
pidfile={self.workdir}/supervisord.pid
childlogdir={self.workdir}

[inet_http_server]
port=127.0.0.1:{port}
username=capplan
password={self.supervisor_password}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
{programs}""")
        self.supervisord = subprocess.Popen(
            [str(VENV_BIN / "supervisord"), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(port, timeout_s=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, xmlrpc.client.Error):
                if self.supervisor().supervisor.getState()["statename"] == "RUNNING":
                    return
            time.sleep(0.2)
        raise RuntimeError("supervisord did not answer")

    # -- Prefect: pool, approver key, deployments, worker ---------------------------------
    def deploy(self) -> None:
        """The work pool, the approver's key, and prefect.yaml's deployments with the soak's
        schedules, through `prefect deploy --all` as an operator would."""
        env = {**os.environ, **self.env()}
        run = [str(VENV_BIN / "prefect"), "--no-prompt"]
        for pool in (POOL, SCALING_POOL):
            subprocess.run(
                [*run, "work-pool", "create", pool, "--type", "process"],
                env=env,
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
        made = subprocess.run(
            [
                *run,
                "automation",
                "create",
                "--from-file",
                str(ROOT / "deployments/prefect/automation-crash-zombie-runs.yaml"),
            ],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if made.returncode != 0:
            raise RuntimeError(f"prefect automation create failed: {made.stdout[-2000:]}")
        spec = self.workdir / "prefect.yaml"
        spec.write_text(yaml.safe_dump(soak_deployments(self.cfg), sort_keys=False))
        done = subprocess.run(
            [*run, "deploy", "--all", "--prefect-file", str(spec)],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if done.returncode != 0:
            raise RuntimeError(f"prefect deploy failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def start_worker(self, **extra_env: str) -> None:
        """A Prefect worker for each pool: the planning one cannot scale (it hands steps to
        apply-step runs), the scaling one runs them and the apply-due sweeper."""
        self.worker = self._worker(POOL, "planning", 6, extra_env)
        self.scaling_worker = self._worker(SCALING_POOL, "scaling", 4, extra_env)

    def _worker(
        self, pool: str, role: str, limit: int, extra_env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env(), "CAPPLAN_POOL_ROLE": role, **extra_env}
        log = (self.workdir / f"worker-{role}.log").open("ab")
        return subprocess.Popen(
            [
                str(VENV_BIN / "prefect"),
                "worker",
                "start",
                "--pool",
                pool,
                "--type",
                "process",
                "--limit",
                str(limit),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )

    def kill_worker(self) -> None:
        """SIGKILL both workers and every flow-run process they started (their sessions)."""
        for proc in (self.worker, self.scaling_worker):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        self.worker = self.scaling_worker = None

    # -- faults --------------------------------------------------------------------------
    def restart_prefect(self) -> float:
        assert self.prefect is not None
        self.prefect.stop()
        wait_port(self.prefect.port, up=False)
        return self.prefect.start()

    def restart_postgres(self) -> float:
        return restart_pg()

    def restart_redis(self) -> float:
        assert self.redis is not None
        t0 = time.monotonic()
        self.redis.stop()
        self.redis.start()
        return time.monotonic() - t0

    def kill_rq_worker(self, group: str) -> tuple[str, int]:
        """SIGKILL one running rq worker of ``group`` (supervisord restarts it); its process
        name and pid (("", 0) when none is running)."""
        infos = [
            i
            for i in self.supervisor().supervisor.getAllProcessInfo()
            if i["group"] == group and i["statename"] == "RUNNING" and i["pid"]
        ]
        if not infos:
            return "", 0
        pid = int(infos[-1]["pid"])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return str(infos[-1]["name"]), pid

    def replaced(self, group: str, name: str, pid: int) -> bool:
        """The process ``name`` of ``group`` killed as ``pid`` runs again under a new pid, or
        is gone (the pool was scaled below it since: nothing to replace)."""
        infos = [
            i
            for i in self.supervisor().supervisor.getAllProcessInfo()
            if i["group"] == group and i["name"] == name
        ]
        return not infos or any(
            i["statename"] == "RUNNING" and int(i["pid"]) not in (0, pid) for i in infos
        )

    def rss_mib(self) -> dict[str, float]:
        """Resident memory (MiB): the Prefect server's process session; the Prefect worker's
        own process; and the flow-run processes it has running at that moment (the rest of
        its session), which come and go with the runs and say nothing about a leak."""
        worker = self.worker.pid if self.worker else 0
        scaling = self.scaling_worker.pid if self.scaling_worker else 0
        own, scaling_own = _pid_rss_mib(worker), _pid_rss_mib(scaling)
        runs = _session_rss_mib(worker) - own + _session_rss_mib(scaling) - scaling_own
        return {
            "prefect_server": _session_rss_mib(
                self.prefect.proc.pid if self.prefect and self.prefect.proc else 0
            ),
            "worker": own,
            "scaling_worker": scaling_own,
            "flow_run_processes": round(max(0.0, runs), 1),
        }

    # -- the end ---------------------------------------------------------------------------
    def stop(self) -> None:
        self.kill_worker()
        if self.supervisord is not None and self.supervisord.poll() is None:
            self.supervisord.send_signal(signal.SIGTERM)
            try:
                self.supervisord.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.supervisord.pid, signal.SIGKILL)
        _kill_tagged(self.tid)
        if self.prefect is not None:
            self.prefect.stop()
        if self.redis is not None:
            self.redis.stop()
        # Prefect starts each flow run in a session of its own, so killing the worker's
        # session leaves runs in flight alive (they would go on burning CPU, retrying a
        # stopped server): whatever still runs with this stack's settings goes too
        _kill_by_environ(f"CAPPLAN_DATA_DIR={self.workdir / 'data'}")
        self._dbs.close()


def soak_deployments(cfg: SoakConfig) -> dict[str, Any]:
    """prefect.yaml with the soak's two work pools (split as prefect.yaml splits them) and
    schedules (the deployments are its own)."""
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    wanted = {
        "capacity-plan",
        "approve-plan",
        "apply-due",
        "apply-step",
        "collect-metrics",
        "plan-queue",
    }
    deployments = []
    for d in doc["deployments"]:
        if d["name"] not in wanted:
            continue
        scaling = d["work_pool"]["name"] == PREFECT_SCALING_POOL
        d = {
            **d,
            "work_pool": {"name": SCALING_POOL if scaling else POOL, "work_queue_name": "default"},
        }
        if d["name"] == "capacity-plan":
            d["schedules"] = [{"interval": cfg.cycle_s, "active": True}]
            d["parameters"] = {**d.get("parameters", {}), "approval_poll_s": 2}
        elif d["name"] == "collect-metrics":
            d["schedules"] = [{"interval": cfg.collect_s, "active": True}]
            d["parameters"] = {"interval_s": cfg.collect_s}
        elif d["name"] == "apply-due":
            d["schedules"] = [{"interval": cfg.sweep_s, "active": True}]
        deployments.append(d)
    doc["deployments"] = deployments
    doc.pop("definitions", None)
    return doc


def _pid_rss_mib(pid: int) -> float:
    """RSS (MiB) of one process; 0 when it is gone."""
    if not pid:
        return 0.0
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True)
    return round(int(out.stdout.strip() or 0) / 1024, 1)


def _session_rss_mib(sid: int) -> float:
    """Summed RSS (MiB) of the live processes of session ``sid``."""
    if not sid:
        return 0.0
    out = subprocess.run(["ps", "-eo", "sid=,rss="], capture_output=True, text=True).stdout
    kib = sum(
        int(rss)
        for s, rss in (line.split() for line in out.splitlines() if line.strip())
        if int(s) == sid
    )
    return round(kib / 1024, 1)


def _kill_by_environ(marker: str) -> None:
    """SIGKILL every process (but this one) whose starting environment holds ``marker``."""
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue  # gone, or not ours to read


def _kill_tagged(tid: str) -> None:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    for line in out.splitlines()[1:]:
        if tid in line:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(line.split()[0]), signal.SIGKILL)
