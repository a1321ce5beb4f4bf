"""The torch-free core every other part of the backend may use, and nothing of theirs.

Job folder layout, stop requests and results, the event protocol, specs, atomic writes,
paths, progress stages and telemetry: small modules with no imports from the rest of
``backend`` (import-linter's layers contract in pyproject.toml holds that).
"""
