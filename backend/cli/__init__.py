"""``lora-studio``, the headless command line: the top layer of the backend.

``main.py`` builds the parser; each other module adds one group of commands over the
layers below it. ``python -m backend.cli`` runs it.
"""
