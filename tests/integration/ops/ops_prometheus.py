"""Helpers for the ops tests: Prometheus's query API (the server: ``tests/service_helpers.py``)."""

from __future__ import annotations

from typing import Any

import httpx


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """The instant vector ``promql`` evaluates to, as Prometheus's API returns it."""
    r = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def values_by(url: str, promql: str, label: str) -> dict[str, float]:
    return {s["metric"].get(label, ""): float(s["value"][1]) for s in query(url, promql)}
