"""capplan's adapters: where the outside world enters (docs/architecture.md, "Layout").

* :mod:`capplan_adapters.store` -- the plan store (SQLAlchemy, Alembic; PostgreSQL or
  SQLite) behind :class:`capplan_core.planning.repository.PlanRepository`, and its in-memory
  fake;
* :mod:`capplan_adapters.scalers` -- the Kubernetes Deployment, KEDA ScaledObject and
  supervisord scalers behind :class:`capplan_core.execution.scaler.Scaler`;
* :mod:`capplan_adapters.metrics` -- the live metric sources (RQ, Redis lists and streams,
  Celery, Prometheus) behind :class:`capplan_core.metrics.snapshot.MetricsSource`, and the
  Redis snapshot cache.

The domain (:mod:`capplan_core`) never imports this package or the client libraries it
wraps (a test says so); the bootstrap (:mod:`capplan_app.bootstrap`) builds adapters from
settings and hands them in.
"""
