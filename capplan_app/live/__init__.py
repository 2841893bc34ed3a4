"""A real worker pool on this machine: supervisord running ``rq worker`` processes on the local
Redis, a load generator, and the closed loop that plans and scales them (``capplan demo
--live`` and the live tests)."""
