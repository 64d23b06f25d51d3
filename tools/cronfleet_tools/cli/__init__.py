"""The ``cronfleet`` command: one Typer app (``app``), one module per command group.

``app`` registers every command explicitly, so the whole command line reads in one place.
"""
