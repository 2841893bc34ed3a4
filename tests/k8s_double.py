"""A small, real HTTP Kubernetes API double for the scaler tests.

It serves exactly the paths capplan's scalers use, over real HTTP on 127.0.0.1, so the
official ``kubernetes`` client is exercised end to end (serialisation, content types, status
codes, timeouts):

* ``GET|PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale``
* ``GET /apis/apps/v1/namespaces/{ns}/deployments/{name}[/status]``
* ``GET|PATCH /apis/keda.sh/v1alpha1/namespaces/{ns}/scaledobjects/{name}``

Behaviour: JSON merge patch, strategic merge patch (same as merge for these flat fields) and
JSON patch (``add``/``replace``/``test``); ``metadata.resourceVersion`` in a patch is a
precondition (409 on mismatch). A replica change leaves ``status`` behind until the status has
been read ``ready_after_polls`` times; ``ready_after_polls=None`` never converges. Moving a
ScaledObject floor above its Deployment's replicas scales the Deployment, as KEDA's HPA would.

Faults: ``forbidden_namespaces`` (403), ``unauthorized`` (401), ``fail_next`` (one-shot status
codes), ``before_handle`` (a hook, e.g. a concurrent writer), ``delay_s`` (slow answers, for
client timeouts), ``stop()`` (port closed: unreachable), and one-shot :class:`Fault` s in
``faults``: an answer delayed before or after the request is handled (a client time-out; with
``delay_after`` the write has landed) and a connection dropped after the write landed.
Every request is recorded in ``requests``; every replica change that took effect in
``changes`` (what the fault tests count: each step must reach the cluster at most once).

Existing libraries were considered first: ``kmock`` (nolar) is asyncio/aiohttp-based and
pre-1.0, ``mockernetes`` patches the client instead of serving HTTP; neither covers the
fault modes needed here, so this stays a small stdlib server.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_DEPLOY = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)(/scale|/status)?$")
_KEDA = re.compile(r"^/apis/keda\.sh/v1alpha1/namespaces/([^/]+)/scaledobjects/([^/]+)$")
_MERGE_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    content_type: str | None
    body: Any
    authorization: str | None = None


@dataclass(frozen=True)
class Fault:
    """A one-shot fault for the next request with ``method`` (or any, ``"*"``).

    ``kind``: ``delay_before`` (sleep ``delay_s``, then handle: the write lands after the
    client may have given up), ``delay_after`` (handle, then sleep: landed, answer late),
    ``drop_after`` (handle, then close the connection without an answer).
    """

    method: str
    kind: str
    delay_s: float = 0.0


@dataclass(frozen=True)
class Change:
    """A replica change that took effect: ``field`` of ``namespace/name`` went ``before ->
    after`` at ``resource_version``."""

    kind: str
    namespace: str
    name: str
    field: str
    before: int
    after: int
    resource_version: str


@dataclass
class _Pending:
    polls_left: int | None  # None: never converges


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902, the ``add``/``replace``/``test`` subset."""
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")
        ]
        node = doc
        for p in parents:
            node = node.setdefault(p, {})
        if op["op"] in ("add", "replace"):
            node[last] = op["value"]
        elif op["op"] == "test":
            if node.get(last) != op["value"]:
                raise ApiError(422, "Invalid", f"test failed at {op['path']}")
        else:
            raise ApiError(422, "Invalid", f"unsupported json-patch op {op['op']!r}")
    return doc


class K8sApiDouble:
    """In-memory Deployments and ScaledObjects behind a threaded HTTP server."""

    def __init__(self, *, ready_after_polls: int | None = 0) -> None:
        self.ready_after_polls = ready_after_polls
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.scaledobjects: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.forbidden_namespaces: set[str] = set()
        self.unauthorized = False
        #: one-shot faults, (method or "*", HTTP status), consumed by the next matching request
        self.fail_next: list[tuple[str, int]] = []
        #: called as before_handle(method, path) under the lock, e.g. to simulate another writer
        self.before_handle: Callable[[str, str], None] | None = None
        self.delay_s = 0.0
        #: one-shot faults (see :class:`Fault`), consumed in order by matching requests
        self.faults: list[Fault] = []
        #: every replica change that took effect, in order
        self.changes: list[Change] = []
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._rv = 100
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # ---- state -----------------------------------------------------------------------
    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def add_deployment(self, namespace: str, name: str, replicas: int = 1) -> dict[str, Any]:
        """A Deployment whose status is already converged at ``replicas``."""
        with self._lock:
            labels = {"app": name}
            dep = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "generation": 1,
                    "resourceVersion": self._next_rv(),
                    "uid": f"uid-{name}",
                    "labels": labels,
                },
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "worker", "image": "worker:1"}]},
                    },
                },
                "status": {},
            }
            self.deployments[(namespace, name)] = dep
            self._converge(dep)
            return dep

    def add_scaledobject(
        self,
        namespace: str,
        name: str,
        deployment: str,
        *,
        min_replicas: int | None = 1,
        max_replicas: int | None = 50,
        target_kind: str | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            spec: dict[str, Any] = {
                "scaleTargetRef": {"name": deployment},
                "triggers": [{"type": "redis", "metadata": {"listName": name, "listLength": "10"}}],
            }
            if target_kind:
                spec["scaleTargetRef"]["kind"] = target_kind
            if min_replicas is not None:
                spec["minReplicaCount"] = min_replicas
            if max_replicas is not None:
                spec["maxReplicaCount"] = max_replicas
            obj = {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "resourceVersion": self._next_rv(),
                    "generation": 1,
                },
                "spec": spec,
            }
            self.scaledobjects[(namespace, name)] = obj
            return obj

    def replicas(self, namespace: str, name: str) -> int:
        return int(self.deployments[(namespace, name)]["spec"]["replicas"])

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    def take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self.faults):
                if fault.method in ("*", method):
                    return self.faults.pop(i)
            return None

    def changes_of(self, namespace: str, name: str) -> list[Change]:
        with self._lock:
            return [c for c in self.changes if (c.namespace, c.name) == (namespace, name)]

    @staticmethod
    def _converge(dep: dict[str, Any]) -> None:
        n = dep["spec"]["replicas"]
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": n,
            "readyReplicas": n,
            "availableReplicas": n,
            "updatedReplicas": n,
        }

    def scale_externally(self, namespace: str, name: str, replicas: int) -> None:
        """Another writer (kubectl, an HPA) changes the Deployment's replicas."""
        with self._lock:
            self._set_deploy_replicas((namespace, name), replicas)

    def _set_deploy_replicas(self, key: tuple[str, str], replicas: int) -> None:
        dep = self.deployments[key]
        before = dep["spec"]["replicas"]
        if before == replicas:
            return
        dep["spec"]["replicas"] = replicas
        dep["metadata"]["generation"] += 1
        dep["metadata"]["resourceVersion"] = self._next_rv()
        self.changes.append(
            Change(
                "Deployment",
                key[0],
                key[1],
                "spec.replicas",
                before,
                replicas,
                dep["metadata"]["resourceVersion"],
            )
        )
        if self.ready_after_polls == 0:
            self._converge(dep)
        else:
            self._pending[key] = _Pending(self.ready_after_polls)

    def _poll_status(self, key: tuple[str, str]) -> None:
        pending = self._pending.get(key)
        if pending is None or pending.polls_left is None:
            return
        pending.polls_left -= 1
        if pending.polls_left <= 0:
            self._converge(self.deployments[key])
            del self._pending[key]

    # ---- request handling ----------------------------------------------------------------
    def handle(self, method: str, path: str, ctype: str | None, body: Any) -> tuple[int, Any]:
        """Answer one request: (status, JSON payload), a snapshot taken under the lock."""
        with self._lock:
            status, payload = self._route(method, path, ctype, body)
            return status, copy.deepcopy(payload)

    def _route(self, method: str, path: str, ctype: str | None, body: Any) -> tuple[int, Any]:
        if self.unauthorized:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        m = _DEPLOY.match(path) or _KEDA.match(path)
        if m is None:
            raise ApiError(404, "NotFound", f"the server could not find {path}")
        ns, name = m.group(1), m.group(2)
        if ns in self.forbidden_namespaces:
            raise ApiError(
                403,
                "Forbidden",
                f'User "system:serviceaccount:capplan:capplan"'
                f' cannot {method.lower()} resource in namespace "{ns}"',
            )
        if self.fail_next and self.fail_next[0][0] in ("*", method):
            status = self.fail_next.pop(0)[1]
            raise ApiError(status, "Injected", f"injected fault {status}")
        if self.before_handle is not None:
            self.before_handle(method, path)
        if m.re is _KEDA:
            return self._keda(method, (ns, name), ctype, body)
        return self._deployment(method, (ns, name), m.group(3) or "", ctype, body)

    def _deployment(
        self, method: str, key: tuple[str, str], sub: str, ctype: str | None, body: Any
    ) -> tuple[int, Any]:
        dep = self.deployments.get(key)
        if dep is None:
            raise ApiError(404, "NotFound", f'deployments.apps "{key[1]}" not found')
        if sub == "/scale":
            if method == "PATCH":
                scale = self._patched(self._scale(dep), ctype, body)
                replicas = (scale.get("spec") or {}).get("replicas")
                if not isinstance(replicas, int) or replicas < 0:
                    raise ApiError(422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}")
                self._set_deploy_replicas(key, replicas)
            elif method != "GET":
                raise ApiError(405, "MethodNotAllowed", method)
            return 200, self._scale(dep)
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", method)
        self._poll_status(key)
        return 200, dep

    @staticmethod
    def _scale(dep: dict[str, Any]) -> dict[str, Any]:
        md = dep["metadata"]
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {k: md[k] for k in ("name", "namespace", "resourceVersion", "uid")},
            "spec": {"replicas": dep["spec"]["replicas"]},
            "status": {
                "replicas": dep["status"].get("replicas", 0),
                "selector": f"app={md['name']}",
            },
        }

    def _patched(self, current: dict[str, Any], ctype: str | None, body: Any) -> dict[str, Any]:
        base = (ctype or "").split(";")[0].strip()
        if base in _MERGE_TYPES and isinstance(body, dict):
            want_rv = (body.get("metadata") or {}).get("resourceVersion")
            new = merge_patch(current, body)
        elif base == "application/json-patch+json" and isinstance(body, list):
            want_rv = None
            new = json_patch(current, body)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {ctype!r}")
        if want_rv is not None and want_rv != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                "the object has been modified; please apply your "
                "changes to the latest version and try again",
            )
        return dict(new)

    def _keda(
        self, method: str, key: tuple[str, str], ctype: str | None, body: Any
    ) -> tuple[int, Any]:
        obj = self.scaledobjects.get(key)
        if obj is None:
            raise ApiError(404, "NotFound", f'scaledobjects.keda.sh "{key[1]}" not found')
        if method == "PATCH":
            new = self._patched(obj, ctype, body)
            new["metadata"]["resourceVersion"] = self._next_rv()
            before = int(obj["spec"].get("minReplicaCount", 0))
            if int(new["spec"].get("minReplicaCount", 0)) != before:
                self.changes.append(
                    Change(
                        "ScaledObject",
                        key[0],
                        key[1],
                        "spec.minReplicaCount",
                        before,
                        int(new["spec"].get("minReplicaCount", 0)),
                        new["metadata"]["resourceVersion"],
                    )
                )
            self.scaledobjects[key] = obj = new
            floor = int(obj["spec"].get("minReplicaCount", 0))
            dkey = (key[0], obj["spec"]["scaleTargetRef"]["name"])
            if dkey in self.deployments and self.replicas(*dkey) < floor:
                self._set_deploy_replicas(dkey, floor)  # what KEDA's HPA would do
        elif method != "GET":
            raise ApiError(405, "MethodNotAllowed", method)
        return 200, obj

    # ---- server ------------------------------------------------------------------------
    def start(self) -> str:
        """Serve on 127.0.0.1 (the same port again after a ``stop()``); return the base URL."""
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Close the port: clients now get 'connection refused' (unreachable)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def configuration(self) -> Any:
        """A ``kubernetes.client.Configuration`` pointing at this double (no retries)."""
        from kubernetes.client import Configuration

        cfg = Configuration(host=self.url)
        cfg.retries = 0
        return cfg

    def api_client(self) -> Any:
        from kubernetes.client import ApiClient

        return ApiClient(self.configuration())


def _make_handler(double: K8sApiDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            ctype = self.headers.get("Content-Type")
            double.requests.append(
                RecordedRequest(
                    self.command,
                    parts.path,
                    parts.query,
                    ctype,
                    body,
                    self.headers.get("Authorization"),
                )
            )
            if double.delay_s:
                time.sleep(double.delay_s)
            fault = double.take_fault(self.command)
            if fault is not None and fault.kind == "delay_before":
                time.sleep(fault.delay_s)
            try:
                status, payload = double.handle(self.command, parts.path, ctype, body)
            except ApiError as err:
                status, payload = (
                    err.status,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "message": err.message,
                        "reason": err.reason,
                        "code": err.status,
                    },
                )
            if fault is not None and fault.kind == "drop_after":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.kind == "delay_after":
                time.sleep(fault.delay_s)
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timed out) first
                self.close_connection = True

        do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

    return Handler
