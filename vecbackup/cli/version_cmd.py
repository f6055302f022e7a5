from __future__ import annotations

from vecbackup import ui
from vecbackup.cli.options import Json, setup
from vecbackup.format.codec import CHUNK_VERSION
from vecbackup.format.manifest import FORMAT_VERSION
from vecbackup.version import __version__


def version(json: Json = False) -> None:
    """Print the versions of vecbackup and of the format it writes."""
    setup(json, False)
    doc = {"vecbackup": __version__, "format_version": FORMAT_VERSION, "chunk_version": CHUNK_VERSION}
    ui.emit(doc, lambda: ui.say(f"vecbackup {__version__} (format {FORMAT_VERSION}, chunks {CHUNK_VERSION})"))
