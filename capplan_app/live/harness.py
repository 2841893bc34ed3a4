"""Start and stop a real supervisord running a group of ``rq worker`` processes.

Used by the live tests' fixtures and by ``capplan demo --live``: :func:`start_supervisord`
writes a config into a directory (an ``[inet_http_server]`` on a free localhost port with basic
auth, a ``[program:rqw]`` group of ``numprocs`` rq workers, none started), launches supervisord
and waits until it answers; :func:`stop_supervisord` stops it (workers get SIGTERM: a warm
shutdown) and kills and reports any process left behind. Started from the main thread,
supervisord also gets SIGTERM when the process that started it dies, even by SIGKILL (Linux's
parent-death signal), so a killed demo leaves no pool running behind it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
VENV_BIN = Path(sys.executable).parent
GROUP = "rqw"
#: a group of two processes, the second of which cannot start
BROKEN_GROUP = "mixed"


class HarnessError(RuntimeError):
    """supervisord did not come up, or left processes behind."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Supervisord:
    """A running supervisord and what the tests need to talk to it."""

    url: str
    username: str
    password: str
    group: str
    numprocs: int
    queue: str
    redis_url: str
    tid: str
    proc: subprocess.Popen[bytes]
    log_dir: Path
    #: every queue the workers listen to, in the order they take jobs (``queue`` first)
    queues: tuple[str, ...] = ()

    def rpc(self, password: str | None = None) -> Any:
        """An XML-RPC proxy to supervisord (``Any``: its methods are dynamic)."""
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(self.username, password or self.password, self.url)
        return xmlrpc.client.ServerProxy(self.url, transport=transport)

    def states(self) -> dict[str, str]:
        """``{process name: statename}`` of the group, straight from XML-RPC."""
        infos = self.rpc().supervisor.getAllProcessInfo()
        return {i["name"]: i["statename"] for i in infos if i["group"] == self.group}

    def running(self) -> list[str]:
        return sorted(n for n, s in self.states().items() if s == "RUNNING")

    def pids(self) -> list[int]:
        infos = self.rpc().supervisor.getAllProcessInfo()
        return [int(i["pid"]) for i in infos if i["pid"]]


def start_supervisord(
    workdir: Path,
    tid: str,
    redis_url: str,
    *,
    queue: str | None = None,
    later_queues: tuple[str, ...] = (),
    numprocs: int = 6,
    startup_timeout_s: float = 20.0,
) -> Supervisord:
    """Write ``workdir/supervisord.conf`` and start supervisord; returns once it answers.

    The workers take jobs from ``queue`` first, then from ``later_queues`` in order
    (``rq worker high low``: a pool shared by several queues). Worker names and the default
    queue (``q_<tid>``) carry ``tid``, so keys and processes can be found and cleaned
    afterwards.
    """
    port, user, password = free_port(), "capplan", f"pw-{uuid.uuid4().hex}"
    queue = queue or f"q_{tid}"
    queues = (queue, *later_queues)
    conf = workdir / "supervisord.conf"
    conf.write_text(
        _config(workdir, port, user, password, " ".join(queues), tid, redis_url, numprocs)
    )
    command = [str(VENV_BIN / "supervisord"), "-c", str(conf)]
    if threading.current_thread() is threading.main_thread() and sys.platform == "linux":
        # the signal follows the thread that forks: only the main thread outlives the pool
        command = [sys.executable, "-c", _PARENT_DEATH_EXEC, str(os.getpid()), *command]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    sup = Supervisord(
        url=f"http://127.0.0.1:{port}/RPC2",
        username=user,
        password=password,
        group=GROUP,
        numprocs=numprocs,
        queue=queue,
        redis_url=redis_url,
        tid=tid,
        proc=proc,
        log_dir=workdir,
        queues=queues,
    )
    deadline = time.monotonic() + startup_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessError(
                f"supervisord exited with {proc.returncode}: "
                f"{(workdir / 'supervisord.log').read_text()[-2000:]}"
            )
        try:
            if sup.rpc().supervisor.getState()["statename"] == "RUNNING":
                return sup
        except (OSError, xmlrpc.client.Error):
            pass
        time.sleep(0.1)
    stop_supervisord(sup)
    raise HarnessError(f"supervisord did not answer within {startup_timeout_s}s")


def stop_supervisord(sup: Supervisord) -> list[str]:
    """SIGTERM supervisord (it stops its workers gracefully); kill and return any leftover."""
    if sup.proc.poll() is None:
        sup.proc.send_signal(signal.SIGTERM)
        try:
            sup.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(sup.proc.pid, signal.SIGKILL)
            sup.proc.wait()
    deadline = time.monotonic() + 10
    while orphans(sup.tid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = orphans(sup.tid)
    for line in left:
        try:
            os.kill(int(line.split()[0]), signal.SIGKILL)
        except ProcessLookupError:
            continue
    return left


def forget_redis_keys(redis_url: str, tid: str) -> int:
    """Delete every Redis key whose name carries ``tid`` (the loop's queue, its RQ registries
    and job records, the workers' keys, the snapshot cache) and ``tid``'s members of RQ's
    registry sets; how many keys went. RQ keeps an emptied queue's registries for ever."""
    from redis import Redis

    r = Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = list(r.scan_iter(match=f"*{tid}*", count=1000))
        if keys:
            r.delete(*keys)
        for set_key in ("rq:queues", "rq:workers"):
            members = [m for m in r.smembers(set_key) if tid.encode() in m]
            if members:
                r.srem(set_key, *members)
        return len(keys)
    finally:
        r.close()


#: exec argv[2:] with SIGTERM as its parent-death signal (prctl PR_SET_PDEATHSIG = 1), unless
#: the parent argv[1] is already gone
_PARENT_DEATH_EXEC = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(0)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def orphans(tid: str) -> list[str]:
    """``ps`` lines of live processes whose command line carries ``tid``."""
    # -ww: never cut the command line to the terminal width (COLUMNS), where the tid is
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid,stat,args"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines()[1:] if tid in line and line.split()[1][:1] != "Z"]


def rq_program(
    name: str,
    queue: str,
    redis_url: str,
    tid: str,
    numprocs: int,
    log_dir: Path,
    *,
    start_retries: int = 3,
) -> str:
    """A supervisord ``[program:NAME]`` of ``numprocs`` real ``rq worker`` processes on
    ``queue`` (space-separated queues: taken in that order), none started (capplan's scaler
    starts them); names and logs carry ``tid``.

    Each start gets a worker name of its own (its pid, ``$$`` of the shell it replaces): RQ
    refuses to register a name whose key is still in Redis, and a SIGKILLed worker's key
    stays until its TTL (minutes), so a fixed name could not be restarted by supervisord
    (the soak's kill-rq-worker fault: BACKOFF, then FATAL)."""
    worker = (
        f"{VENV_BIN}/rq worker --url {redis_url} --path {HERE} "
        f"--name %(program_name)s_%(process_num)02d_{tid}_$$ --logging_level WARNING {queue}"
    )
    return f"""[program:{name}]
command=/bin/sh -c 'exec {worker}'
numprocs={numprocs}
process_name=%(program_name)s_%(process_num)02d
directory={HERE}
environment=PYTHONPATH="{HERE}"
autostart=false
autorestart=true
startsecs=1
startretries={start_retries}
stopsignal=TERM
stopwaitsecs=15
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={log_dir}/%(program_name)s_%(process_num)02d.log
"""


def _config(
    tmp: Path,
    port: int,
    user: str,
    password: str,
    queue: str,
    tid: str,
    redis_url: str,
    numprocs: int,
) -> str:
    return f"""
[supervisord]
nodaemon=true
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}
loglevel=info

[inet_http_server]
port=127.0.0.1:{port}
username={user}
password={password}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=http://127.0.0.1:{port}
username={user}
password={password}

{rq_program(GROUP, queue, redis_url, tid, numprocs, tmp)}
# A group whose second process cannot start (no such command): for the roll-back test.
[group:{BROKEN_GROUP}]
programs=mxa,mxb

[program:mxa]
command={sys.executable} -c "import time; time.sleep(600)" {tid}
process_name=mxa_00
autostart=false
startsecs=0
stopsignal=TERM
stopwaitsecs=5

[program:mxb]
command={tmp}/no-such-command {tid}
process_name=mxb_01
autostart=false
startsecs=0
"""
