from __future__ import annotations

from vecbackup import api, ui
from vecbackup.cli.options import Json, setup
from vecbackup.version import __version__


def version(json: Json = False) -> None:
    """Print the versions of vecbackup and of the format it writes."""
    setup(json, False)
    doc = {"vecbackup": __version__, "format_version": api.FORMAT_VERSION, "chunk_version": api.CHUNK_VERSION}
    ui.emit(doc, lambda: ui.say(f"vecbackup {__version__} (format {api.FORMAT_VERSION}, chunks {api.CHUNK_VERSION})"))
