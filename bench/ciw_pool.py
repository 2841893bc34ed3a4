"""A shared pool simulated by Ciw, the independent check of capplan's priority sizing.

Ciw (Palmer, Knight, Harper & Tuson, "Ciw: An open-source discrete event simulation library",
J. Simulation 13(1), 2019; https://ciw.readthedocs.io) is a process-based simulator written
apart from capplan. One node with ``workers`` servers serves K customer classes:

- ``strict``: Ciw's own priority classes (``create_network(priority_classes=...)``:
  non-preemptive, FIFO within a class);
- ``round_robin``: one priority class and a service discipline that takes the oldest job of the
  first class with a job waiting after the class that last started service (cyclic), the pool
  pointer of ``capplan_core.simulation.classes``; the pointer moves only when a server is
  attached (Ciw also asks the discipline on arrivals that find every server busy);
- ``weighted``: the oldest job of a waiting class picked with probability proportional to its
  weight (Ciw's own random stream).

Arrivals stop at ``end_s`` (the jobs that arrived are all served, as in capplan's engines);
waits are kept for jobs arriving in [``warmup_s``, ``end_s``); a job still waiting when the run
is cut at ``cut_s`` counts with the wait it had so far.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import ciw
import numpy as np


@dataclass(frozen=True)
class CiwClass:
    """One class: Poisson arrivals (jobs/s), service mean (s) and SCV (1: exponential, else
    lognormal fitted to mean and SCV), weight (``weighted`` only)."""

    rate_per_s: float
    mean_service_s: float
    service_scv: float = 1.0
    weight: float = 1.0


class _StopAfter(ciw.dists.Distribution):  # type: ignore[misc]
    """Inter-arrival times from ``inner`` until ``end_s``, then none."""

    def __init__(self, inner: Any, end_s: float) -> None:
        self.inner, self.end_s = inner, end_s

    def sample(self, t: float | None = None, ind: Any = None) -> float:
        return math.inf if t is not None and t >= self.end_s else self.inner.sample(t, ind)


def _service(c: CiwClass) -> Any:
    if c.service_scv == 1.0:
        return ciw.dists.Exponential(1.0 / c.mean_service_s)
    sigma2 = math.log1p(c.service_scv)
    return ciw.dists.Lognormal(math.log(c.mean_service_s) - sigma2 / 2.0, math.sqrt(sigma2))


class _PoolNode(ciw.Node):  # type: ignore[misc]
    """A node that remembers the class that last started service (for round robin)."""

    last_class = -1

    def attach_server(self, server: Any, individual: Any) -> None:
        super().attach_server(server, individual)
        self.last_class = individual.customer_class


def _class_discipline(discipline: str, classes: list[CiwClass], holder: dict[str, Any]) -> Any:
    n = len(classes)

    def pick(individuals: list[Any], t: float) -> Any:
        heads: dict[int, Any] = {}
        for ind in individuals:  # in arrival order: the first seen is the class's head
            heads.setdefault(ind.customer_class, ind)
        if discipline == "round_robin":
            last = holder["node"].last_class
            k = next((last + i) % n for i in range(1, n + 1) if (last + i) % n in heads)
            return heads[k]
        waiting = sorted(heads)
        u = random.random() * sum(classes[k].weight for k in waiting)
        for k in waiting:
            u -= classes[k].weight
            if u < 0:
                return heads[k]
        return heads[waiting[-1]]

    return pick


def run_ciw(
    classes: list[CiwClass],
    workers: int,
    discipline: str,
    *,
    warmup_s: float,
    end_s: float,
    cut_s: float,
    seed: int,
) -> list[np.ndarray]:
    """One replication: each class's waits (s) for jobs arriving in [warmup_s, end_s)."""
    kw: dict[str, Any] = {}
    holder: dict[str, Any] = {}
    if discipline == "strict":
        kw["priority_classes"] = {k: k for k in range(len(classes))}
    else:
        kw["service_disciplines"] = [_class_discipline(discipline, classes, holder)]
    network = ciw.create_network(
        arrival_distributions={
            k: [_StopAfter(ciw.dists.Exponential(c.rate_per_s), end_s)]
            for k, c in enumerate(classes)
        },
        service_distributions={k: [_service(c)] for k, c in enumerate(classes)},
        number_of_servers=[workers],
        **kw,
    )
    ciw.seed(seed)
    sim = ciw.Simulation(network, node_class=None if discipline == "strict" else _PoolNode)
    if discipline != "strict":
        holder["node"] = sim.nodes[1]
    sim.simulate_until_max_time(cut_s)
    waits: list[list[float]] = [[] for _ in classes]
    for r in sim.get_all_records(only=["service"]):
        if warmup_s <= r.arrival_date < end_s:
            waits[r.customer_class].append(r.waiting_time)
    for ind in sim.nodes[1].all_individuals:  # cut before service: the wait so far
        if warmup_s <= ind.arrival_date < end_s:
            started = ind.service_start_date
            wait = (started if started is not False else sim.current_time) - ind.arrival_date
            waits[ind.customer_class].append(wait)
    return [np.asarray(w, dtype=float) for w in waits]
