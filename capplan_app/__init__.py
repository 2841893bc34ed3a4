"""The application layer outside the domain: settings and the one bootstrap that builds adapters.

``capplan_core`` never imports this package; tasks, flows and the CLI do, and hand what it builds
(the store, the scaler, the metric sources, the Redis client) into core functions.
"""
