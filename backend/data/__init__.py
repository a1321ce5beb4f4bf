"""Datasets: read any supported file, normalize it to messages, validate every row, measure it in tokens.

Entry points: ``load.check_dataset`` (a report), ``load.read_dataset`` (examples in memory, for training),
``store.import_dataset`` (Arrow in the data folder) and ``tokens`` (counts and previews with a tokenizer).
See docs/data-formats.md.
"""
