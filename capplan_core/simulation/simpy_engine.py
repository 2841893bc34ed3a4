"""The SimPy reference engine: a clear, job-level model of one replication.

``PoolModel`` owns the ``simpy.Environment``; arrivals, the plan, worker start-up, service and
failures are generator methods; every change of the pool is appended to a trace. Rules shared
with the fast engine (so both give the same answer from the same inputs):

- a queued job goes to the idle worker with the lowest slot number;
- scale-up starts workers in the lowest free slots; scale-down removes, highest slot first,
  starting workers, then restarting (down) ones, then idle ones, then marks busy ones to leave
  after their job;
- a worker draws its next time to failure (``failure_draws_s[slot, k]``) whenever it becomes
  ready; a failed worker's job goes back to the head of the queue; a failed worker that was
  leaving leaves, the others restart after ``restart_s``;
- arrivals stop at the horizon; the run goes on until the queue is empty (or ``stop_s``);
- a shared pool (``scenario.classes``) keeps one FIFO per class and a freed worker takes the
  head of the class its discipline picks (``class_queues.ClassQueues``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from capplan_core.simulation.class_queues import ClassQueues
from capplan_core.simulation.records import (
    BUSY,
    DOWN,
    FREE,
    IDLE,
    STARTING,
    JobRunRecord,
    windows_from_trace,
)
from capplan_core.simulation.sampling import ReplicationInputs
from capplan_core.simulation.scenario import SimScenario

Proc = Generator[simpy.Event, Any, None]


class PoolModel:
    """One replication of the worker pool, simulated with SimPy."""

    def __init__(self, scenario: SimScenario, inputs: ReplicationInputs) -> None:
        self.env = simpy.Environment()
        self.scenario = scenario
        self.inputs = inputs
        n_slots = inputs.failure_draws_s.shape[0]
        n_jobs = inputs.arrival_times_s.size
        self.state = [FREE] * n_slots
        self.leaving = [False] * n_slots
        self.incarnation = [0] * n_slots
        self.failures_used = [0] * n_slots
        self.job_of = [-1] * n_slots
        self.service: list[simpy.Process | None] = [None] * n_slots
        self.queue: deque[int] | ClassQueues = deque()
        if inputs.job_class is not None:
            weights = np.array([c.weight for c in scenario.classes], dtype=float)
            self.queue = ClassQueues(
                inputs.job_class, len(scenario.classes), scenario.discipline, weights, inputs.pick_u
            )
        self.waits_s = np.zeros(n_jobs)
        self.queued_at_s = np.zeros(n_jobs)
        self.trace: list[tuple[float, int, int, int]] = []  # (time, backlog, busy, ready)
        self.drained = self.env.event()

    # ---- processes -------------------------------------------------------------------
    def arrivals(self) -> Proc:
        times = self.inputs.arrival_times_s
        for job in range(self.inputs.n_backlog, times.size):
            yield self.env.timeout(times[job] - self.env.now)
            self._enqueue(job)
            self._settle()

    def plan(self) -> Proc:
        for time_s, target in self.scenario.steps:
            yield self.env.timeout(time_s - self.env.now)
            self._scale_to(self.scenario.effective_target(target))
            self._settle()

    def startup(self, slot: int, incarnation: int) -> Proc:
        yield self.env.timeout(self.scenario.startup_s)
        if self.incarnation[slot] == incarnation and self.state[slot] == STARTING:
            self._make_ready(slot)
            self._settle()

    def serve(self, slot: int, job: int) -> Proc:
        try:
            yield self.env.timeout(self.inputs.service_times_s[job])
        except simpy.Interrupt:
            return  # the failure already put the job back in the queue
        self.job_of[slot] = -1
        if self.leaving[slot]:
            self._free(slot)
        else:
            self.state[slot] = IDLE
        self._settle()

    def failures(self, slot: int, incarnation: int) -> Proc:
        """One up-period of a worker: fail after the drawn time, restart, start a new period."""
        draws = self.inputs.failure_draws_s
        k = self.failures_used[slot]
        if k >= draws.shape[1]:
            return
        self.failures_used[slot] = k + 1
        yield self.env.timeout(draws[slot, k])
        if self.incarnation[slot] != incarnation or self.state[slot] not in (IDLE, BUSY):
            return  # removed meanwhile
        if self.state[slot] == BUSY:
            job = self.job_of[slot]
            self.job_of[slot] = -1
            proc = self.service[slot]
            if proc is not None:
                proc.interrupt("worker failed")
            self.queue.appendleft(job)
            self.queued_at_s[job] = self.env.now
        if self.leaving[slot]:
            self._free(slot)
            self._settle()
            return
        self.state[slot] = DOWN
        self._settle()
        yield self.env.timeout(self.scenario.restart_s)
        if self.incarnation[slot] == incarnation and self.state[slot] == DOWN:
            self._make_ready(slot)
            self._settle()

    # ---- state changes ---------------------------------------------------------------
    def _enqueue(self, job: int) -> None:
        self.queue.append(job)
        self.queued_at_s[job] = self.env.now

    def _make_ready(self, slot: int) -> None:
        self.state[slot] = IDLE
        if self.inputs.failure_draws_s.shape[1] > 0:
            self.env.process(self.failures(slot, self.incarnation[slot]))

    def _free(self, slot: int) -> None:
        self.state[slot] = FREE
        self.leaving[slot] = False
        self.incarnation[slot] += 1

    def _start_worker(self, slot: int) -> None:
        self.incarnation[slot] += 1
        self.leaving[slot] = False
        if self.scenario.startup_s == 0.0:
            self._make_ready(slot)
        else:
            self.state[slot] = STARTING
            self.env.process(self.startup(slot, self.incarnation[slot]))

    def _scale_to(self, target: int) -> None:
        active = [s for s, st in enumerate(self.state) if st != FREE and not self.leaving[s]]
        if target > len(active):
            free = [s for s, st in enumerate(self.state) if st == FREE]
            for slot in free[: target - len(active)]:
                self._start_worker(slot)
            return
        excess = len(active) - target
        for kind in (STARTING, DOWN, IDLE, BUSY):
            for slot in sorted((s for s in active if self.state[s] == kind), reverse=True):
                if excess == 0:
                    return
                excess -= 1
                if kind == BUSY:
                    self.leaving[slot] = True
                else:
                    self._free(slot)

    def _dispatch(self) -> None:
        while self.queue:
            idle = [s for s, st in enumerate(self.state) if st == IDLE]
            if not idle:
                return
            slot, job = idle[0], self.queue.popleft()
            self.waits_s[job] += self.env.now - self.queued_at_s[job]
            self.state[slot] = BUSY
            self.job_of[slot] = job
            self.service[slot] = self.env.process(self.serve(slot, job))

    def _settle(self) -> None:
        """After every event: hand out jobs, record the pool, notice the end of the run."""
        self._dispatch()
        busy = sum(st == BUSY for st in self.state)
        ready = busy + sum(st == IDLE for st in self.state)
        self.trace.append((self.env.now, len(self.queue), busy, ready))
        if (
            not self.queue
            and self.env.now >= self.scenario.horizon_s
            and not self.drained.triggered
        ):
            self.drained.succeed()

    # ---- run -------------------------------------------------------------------------
    def run(self) -> JobRunRecord:
        sc = self.scenario
        for slot in range(sc.effective_target(sc.initial_workers)):
            self.incarnation[slot] += 1  # the initial pool is ready at once
            self._make_ready(slot)
        for job in range(self.inputs.n_backlog):
            self._enqueue(job)
        self._settle()
        self.env.process(self.arrivals())
        self.env.process(self.plan())
        self.env.run(until=sc.horizon_s)
        if self.queue:
            self.env.run(
                until=simpy.AnyOf(
                    self.env, [self.drained, self.env.timeout(sc.stop_s - sc.horizon_s)]
                )
            )
        for job in self.queue:  # never started: count the wait so far
            self.waits_s[job] += self.env.now - self.queued_at_s[job]
        tr = np.asarray(self.trace, dtype=float).reshape(-1, 4)
        max_q, busy_s, ready_s = windows_from_trace(
            tr[:, 0], tr[:, 1], tr[:, 2], tr[:, 3], sc.window_edges_s
        )
        return JobRunRecord(self.waits_s, max_q, busy_s, ready_s)


def run_simpy(scenario: SimScenario, inputs: ReplicationInputs) -> JobRunRecord:
    """Simulate one replication with the SimPy reference model."""
    return PoolModel(scenario, inputs).run()
