"""The loop run inside the drill's own process (bench/dr_drill.py ``--loop inprocess``, CI's).

The same flows as the deployed loop, as real Prefect flow runs on the drill's Prefect server,
but called from threads of this process instead of a worker's subprocesses (a flow run's
process takes ~30 s to import on this 2-core machine; these import once): ``collect-metrics``
every ``collect_s``, ``capacity-plan`` every ``cycle_s`` (or at once on :meth:`kick`) with
approvals by policy (a plan a person must decide waits, paused, in an ``approve-plan`` run
in a thread of this process), and the ``apply-due`` sweeper every ``sweep_s``. A flow that
fails (the database is gone) is counted, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class InProcessLoop:
    cycle_s: float
    sweep_s: float
    collect_s: int
    log: Callable[[str, dict[str, Any]], None]
    runs: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _kick: threading.Event = field(default_factory=threading.Event)
    _planning_free: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._planning_free.set()
        from flows.apply_due import apply_due_flow
        from flows.capacity_plan import capacity_plan
        from flows.collect_metrics import collect_metrics

        def cycle() -> Any:
            return asyncio.run(
                capacity_plan(approval="policy", approval_poll_s=2, requested_by="dr-drill")
            )

        for name, every, body, wake in (
            (
                "collect-metrics",
                float(self.collect_s),
                lambda: collect_metrics(interval_s=self.collect_s),
                None,
            ),
            ("capacity-plan", self.cycle_s, cycle, self._kick),
            ("apply-due", self.sweep_s, apply_due_flow, None),
        ):
            t = threading.Thread(
                target=self._every, args=(name, every, body, wake), daemon=True, name=f"dr-{name}"
            )
            t.start()
            self._threads.append(t)

    def hold_planning(self) -> None:
        """No planning cycle starts until :meth:`kick` (one in progress finishes). The drill
        holds its cycles from the loss until the waiting approval is decided: a cycle in
        between supersedes that plan (correctly, and with its reason), and the resume the
        drill measures would then find nothing waiting."""
        self._planning_free.clear()

    def kick(self) -> None:
        """Run a planning cycle now (after the one in progress, if any); ends a hold."""
        self._planning_free.set()
        self._kick.set()

    def stop(self) -> None:
        self._stop.set()
        self._planning_free.set()
        self._kick.set()
        for t in self._threads:
            t.join(120)

    def _every(
        self, name: str, every_s: float, body: Callable[[], Any], wake: threading.Event | None
    ) -> None:
        while not self._stop.is_set():
            if wake is not None:  # the planning cycle: wait out a hold
                while not self._planning_free.wait(1.0) and not self._stop.is_set():
                    pass
            try:
                body()
                self.runs[name] += 1
            except Exception as err:  # noqa: BLE001 - the database is gone: next round
                self.failures[name] += 1
                self.log(
                    "flow failed",
                    {"flow": name, "error": f"{type(err).__name__}: {str(err)[:200]}"},
                )
            if wake is None:
                self._stop.wait(every_s)
            else:
                wake.wait(every_s)
                wake.clear()
