"""Scale a supervisord program group: how many of its ``numprocs`` processes are up.

The pool is one supervisord ``[program:x]`` with ``numprocs=N_max`` (RQ and Celery both document
running workers this way); the policy's ``target`` is ``{kind: supervisor, name: <group>}`` and
its ``namespace`` is unused. The replica count is the number of the group's processes in
supervisord's ``RUNNING_STATES`` (``STARTING``, ``RUNNING``, ``BACKOFF``: the processes it keeps
up). Scaling up starts the lowest-numbered stopped processes; scaling down stops the
highest-numbered up ones (a crash-looping ``BACKOFF``/``STARTING`` one first). A stop is
supervisord's ``stopsignal`` then ``SIGKILL`` after ``stopwaitsecs``: with ``stopsignal=TERM``
an ``rq worker`` finishes its current job before it exits (a warm shutdown).

Every call talks to supervisord's XML-RPC interface (``supervisor.xmlrpc.SupervisorTransport``:
``http://host:port/RPC2`` with basic auth, or ``unix:///path.sock``). The password is never put
in a message, an error or an outcome.

Failure leaves the group as it was: the whole request is checked against one read before any
write; should a start/stop fail part-way (someone else moved a process in between), the
processes this call already moved are moved back before :class:`ScalerError` is raised.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.parsers.expat import ExpatError

from pydantic import SecretStr

from capplan_core.execution.scaler import (
    LiveReplicas,
    ReadyOutcome,
    ScaleOutcome,
    ScalerError,
    ScalerErrorKind,
    check_replicas,
)
from capplan_core.policy import TargetSpec

#: supervisord's ``RUNNING_STATES``: a process in one of these is one it keeps up.
UP_STATES: frozenset[str] = frozenset({"STARTING", "RUNNING", "BACKOFF"})
#: states from which ``startProcess`` may start a process.
STARTABLE_STATES: frozenset[str] = frozenset({"STOPPED", "EXITED", "FATAL"})
REPLICA_FIELD = "supervisord group: processes in STARTING/RUNNING/BACKOFF"

# supervisor.xmlrpc.Faults codes, named here so the module imports without the package.
_FAULT_KINDS: dict[int, ScalerErrorKind] = {
    1: "config",  # UNKNOWN_METHOD: not a supervisord, or its rpcinterface is missing
    6: "unreachable",  # SHUTDOWN_STATE: supervisord is shutting down
    10: "not_found",  # BAD_NAME
    60: "conflict",  # ALREADY_STARTED: someone else started it after our read
    70: "conflict",  # NOT_RUNNING: someone else stopped it after our read
}
_TRAILING_NUMBER = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class GroupProcess:
    """One process of the group, as ``supervisor.getAllProcessInfo`` reports it."""

    name: str
    state: str

    @property
    def number(self) -> int:
        """``process_num`` parsed from the name's trailing digits (``rqw_07`` → 7)."""
        match = _TRAILING_NUMBER.search(self.name)
        return int(match.group(1)) if match else -1


class SupervisorScaler:
    """``Scaler`` for ``kind: supervisor`` targets, over supervisord's XML-RPC interface.

    Args:
        server_url: ``http://host:port/RPC2`` (``[inet_http_server]``) or ``unix:///path.sock``
            (``[unix_http_server]``). Credentials must not be in the URL.
        username, password: basic-auth credentials of the server section, or None.
        request_timeout_s: socket timeout of each XML-RPC call (a hung supervisord must not
            hang a flow run).
        poll_interval_s: seconds between polls in :meth:`wait_ready`.

    Raises:
        ScalerError: ``config`` when the URL is not http/unix or carries credentials.
    """

    def __init__(
        self,
        server_url: str,
        username: str | None = None,
        password: SecretStr | str | None = None,
        *,
        request_timeout_s: float = 10.0,
        poll_interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(server_url)
        if parts.scheme not in ("http", "unix"):
            raise ScalerError(
                "config",
                f"supervisord URL must be http://host:port/RPC2 or "
                f"unix:///path.sock (got scheme {parts.scheme!r})",
            )
        if parts.username is not None or parts.password is not None:
            raise ScalerError(
                "config",
                "put the supervisord credentials in username/password settings, not in the URL",
            )
        self.server_url = server_url
        self.username = username
        self._password = password if isinstance(password, SecretStr | None) else SecretStr(password)
        self.request_timeout_s = request_timeout_s
        self.poll_interval_s = poll_interval_s
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"SupervisorScaler({self.server_url!r}, username={self.username!r})"

    # -- XML-RPC plumbing -------------------------------------------------------------------

    @contextmanager
    def _rpc(self, action: str, target: TargetSpec) -> Iterator[Any]:
        """A fresh proxy for one operation; client exceptions become :class:`ScalerError`."""
        from supervisor.xmlrpc import SupervisorTransport

        password = self._password.get_secret_value() if self._password is not None else None
        transport = SupervisorTransport(self.username, password, self.server_url)
        _set_timeout(transport, self.request_timeout_s)
        uri = self.server_url if self.server_url.startswith("http://") else "http://localhost"
        proxy = xmlrpc.client.ServerProxy(uri, transport=transport)
        try:
            with _rpc_errors(action, self._where(target), target.name):
                yield proxy
        finally:
            transport.close()

    def _where(self, target: TargetSpec) -> str:
        return f"group {target.name!r} on supervisord {self.server_url}"

    def _processes(self, proxy: Any, target: TargetSpec) -> list[GroupProcess]:
        infos = proxy.supervisor.getAllProcessInfo()
        found = sorted(
            (
                GroupProcess(str(i["name"]), str(i["statename"]))
                for i in infos
                if i.get("group") == target.name
            ),
            key=lambda p: (p.number, p.name),
        )
        if not found:
            groups = sorted({str(i.get("group")) for i in infos})
            raise ScalerError(
                "not_found",
                f"no {self._where(target)}; its groups are {groups}",
                target=target.name,
            )
        return found

    @staticmethod
    def _check_kind(target: TargetSpec) -> None:
        if target.kind != "supervisor":
            raise ScalerError(
                "invalid",
                f"{target.namespace}/{target.name} is a {target.kind}; "
                "the supervisor scaler only moves kind: supervisor targets",
                target=target.name,
            )

    # -- Scaler ---------------------------------------------------------------------------

    def get_replicas(self, target: TargetSpec) -> int:
        """Processes of the group in STARTING/RUNNING/BACKOFF.

        Raises:
            ScalerError: ``unreachable``, ``forbidden``, ``not_found``, ``config``.
        """
        self._check_kind(target)
        with self._rpc("read processes of", target) as proxy:
            return _up_count(self._processes(proxy, target))

    def read(self, target: TargetSpec) -> LiveReplicas:
        """The up count and a version: a hash of which of the group's processes are up."""
        self._check_kind(target)
        with self._rpc("read processes of", target) as proxy:
            procs = self._processes(proxy, target)
        return LiveReplicas(_up_count(procs), _states_version(procs))

    def set_replicas(
        self, target: TargetSpec, replicas: int, *, expected: LiveReplicas | None = None
    ) -> ScaleOutcome:
        """Start or stop processes until ``replicas`` are up; a no-op when already so.

        Starts/stops return without waiting (``wait=False``); use :meth:`wait_ready`. With
        ``expected``, a group whose process states changed since that read is a ``conflict``.

        Raises:
            ScalerError: ``invalid`` (more than the group's numprocs, or a negative count),
                ``not_found``, ``forbidden``, ``unreachable``, ``conflict`` (a process still
                stopping, or moved by someone else meanwhile); the group is as it was.
        """
        self._check_kind(target)
        check_replicas(target, replicas)
        with self._rpc("scale", target) as proxy:
            procs = self._processes(proxy, target)
            before = _up_count(procs)
            if expected is not None and expected.version not in (None, _states_version(procs)):
                raise ScalerError(
                    "conflict",
                    f"{self._where(target)} changed since it was read; re-read and re-check",
                    target=target.name,
                )
            if replicas > len(procs):
                raise ScalerError(
                    "invalid",
                    f"cannot run {replicas} processes of {self._where(target)}: it has "
                    f"numprocs={len(procs)}; nothing was changed",
                    target=target.name,
                )
            if replicas != before:
                plan = _choose(procs, replicas, self._where(target), target.name)
                self._apply(proxy, target, plan, start=replicas > before)
        return ScaleOutcome(
            kind=target.kind,
            namespace=target.namespace,
            name=target.name,
            from_replicas=before,
            to_replicas=replicas,
            changed=replicas != before,
            replica_field=REPLICA_FIELD,
        )

    def _apply(self, proxy: Any, target: TargetSpec, names: list[str], *, start: bool) -> None:
        """Start (or stop) ``names`` in order; on a failure, undo the ones done, then raise."""
        do, undo = ("startProcess", "stopProcess") if start else ("stopProcess", "startProcess")
        done: list[str] = []
        try:
            for name in names:
                getattr(proxy.supervisor, do)(f"{target.name}:{name}", False)
                done.append(name)
        except (xmlrpc.client.Error, OSError, http.client.HTTPException) as err:
            undone = _best_effort(
                lambda n: getattr(proxy.supervisor, undo)(f"{target.name}:{n}", False), done
            )
            left = sorted(set(done) - set(undone))
            note = f"; COULD NOT MOVE BACK {left}" if left else "; nothing was left changed"
            action = f"{do} {names[len(done)]} of {self._where(target)}"
            if isinstance(err, xmlrpc.client.Fault):
                raise _from_fault(err, action, target.name, note) from err
            with _rpc_errors(action, "", target.name, note):
                raise

    def wait_ready(self, target: TargetSpec, replicas: int, timeout_s: float) -> ReadyOutcome:
        """Poll until exactly ``replicas`` processes are RUNNING and none is still moving.

        Returns ``ready=False`` when ``timeout_s`` runs out. Raises :class:`ScalerError` if
        supervisord cannot be read.
        """
        self._check_kind(target)
        start = self._clock()
        polls = 0
        while True:
            with self._rpc("read processes of", target) as proxy:
                procs = self._processes(proxy, target)
            polls += 1
            running = sum(p.state == "RUNNING" for p in procs)
            moving = sum(p.state in ("STARTING", "STOPPING", "BACKOFF") for p in procs)
            waited = self._clock() - start
            ready = running == replicas and moving == 0
            if ready or waited >= timeout_s:
                return ReadyOutcome(
                    namespace=target.namespace,
                    name=target.name,
                    desired_replicas=replicas,
                    ready_replicas=running,
                    ready=ready,
                    waited_s=round(waited, 3),
                    polls=polls,
                    message=f"{running} RUNNING, {moving} starting/stopping/backoff of "
                    f"{len(procs)} in group {target.name!r}",
                )
            self._sleep(min(self.poll_interval_s, max(timeout_s - waited, 0.0)))


def _states_version(procs: list[GroupProcess]) -> str:
    # up/down only: a process going STARTING -> RUNNING is not someone else's write
    text = ";".join(f"{p.name}={p.state in UP_STATES}" for p in procs)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _up_count(procs: list[GroupProcess]) -> int:
    return sum(p.state in UP_STATES for p in procs)


def _choose(procs: list[GroupProcess], replicas: int, where: str, target: str) -> list[str]:
    """Which processes to start (lowest-numbered stopped) or stop (highest-numbered up)."""
    up = [p for p in procs if p.state in UP_STATES]
    if replicas > len(up):
        startable = [p for p in procs if p.state in STARTABLE_STATES]
        need = replicas - len(up)
        if len(startable) < need:
            busy = [
                f"{p.name}={p.state}"
                for p in procs
                if p.state not in UP_STATES and p.state not in STARTABLE_STATES
            ]
            raise ScalerError(
                "conflict",
                f"cannot start {need} more processes of {where}: "
                f"only {len(startable)} are stopped ({busy}); retry later, "
                "nothing was changed",
                target=target,
            )
        return [p.name for p in startable[:need]]
    # A process that is not yet (or no longer) RUNNING does no work: stop those first.
    ranked = sorted(up, key=lambda p: (p.state == "RUNNING", -p.number))
    return [p.name for p in ranked[: len(up) - replicas]]


def _best_effort(action: Callable[[str], Any], names: list[str]) -> list[str]:
    undone: list[str] = []
    for name in reversed(names):
        try:
            action(name)
            undone.append(name)
        except (xmlrpc.client.Error, OSError, http.client.HTTPException):
            continue
    return list(reversed(undone))


def _set_timeout(transport: Any, timeout_s: float) -> None:
    """``SupervisorTransport`` opens connections without a timeout; give each one ours."""
    make = transport._get_connection

    def with_timeout() -> Any:
        conn = make()
        conn.timeout = timeout_s  # used by HTTPConnection.connect
        connect = conn.connect

        def connect_with_timeout() -> None:  # UnixStreamHTTPConnection.connect ignores it
            connect()
            conn.sock.settimeout(timeout_s)

        conn.connect = connect_with_timeout
        return conn

    transport._get_connection = with_timeout


def _from_fault(err: xmlrpc.client.Fault, action: str, target: str, note: str = "") -> ScalerError:
    kind = _FAULT_KINDS.get(int(err.faultCode), "invalid")
    return ScalerError(
        kind,
        f"cannot {action}: supervisord fault {err.faultCode} {err.faultString}{note}",
        target=target,
    )


@contextmanager
def _rpc_errors(action: str, where: str, target: str, note: str = "") -> Iterator[None]:
    """Map XML-RPC, HTTP and socket errors to :class:`ScalerError` (never echoing secrets)."""
    what = f"{action} {where}".strip()
    try:
        yield
    except ScalerError:
        raise
    except xmlrpc.client.Fault as err:
        raise _from_fault(err, f"{what}", target, note) from err
    except xmlrpc.client.ProtocolError as err:
        kind: ScalerErrorKind = (
            "forbidden"
            if err.errcode in (401, 403)
            else "unreachable"
            if err.errcode >= 500
            else "config"
        )
        raise ScalerError(
            kind,
            f"cannot {what}: HTTP {err.errcode} {err.errmsg}"
            + (" (check the supervisord username/password settings)" if kind == "forbidden" else "")
            + note,
            target=target,
            status=err.errcode,
        ) from err
    except (OSError, http.client.HTTPException) as err:
        raise ScalerError(
            "unreachable",
            f"cannot {what}: supervisord unreachable "
            f"({type(err).__name__}: {getattr(err, 'strerror', None) or err})"
            + (note or "; nothing was changed"),
            target=target,
        ) from err
    except (xmlrpc.client.ResponseError, ExpatError, ValueError) as err:
        raise ScalerError(
            "config",
            f"cannot {what}: the answer is not XML-RPC "
            f"({type(err).__name__}); is the URL a supervisord?",
            target=target,
        ) from err
