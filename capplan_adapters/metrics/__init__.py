"""The live metric sources and the Redis snapshot cache (see :mod:`capplan_adapters`).

Each source is imported from its module, so importing this package connects to nothing.
"""
