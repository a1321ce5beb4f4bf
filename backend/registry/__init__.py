"""The adapter registry: every adapter a numbered version of a named adapter, with stages and history.

The folders are the truth (``docs/registry.md``); the SQLite index beside the queue is a
cache that can be rebuilt from them at any time.
"""
