from __future__ import annotations

import vecbackup
from vecbackup import ui
from vecbackup.cli.options import Json, setup
from vecbackup.format.codec import CHUNK_VERSION
from vecbackup.format.manifest import FORMAT_VERSION


def version(json: Json = False) -> None:
    """Print the versions of vecbackup and of the format it writes."""
    setup(json, False)
    doc = {"vecbackup": vecbackup.__version__, "format_version": FORMAT_VERSION, "chunk_version": CHUNK_VERSION}
    ui.emit(doc, lambda: ui.say(f"vecbackup {vecbackup.__version__} (format {FORMAT_VERSION}, chunks {CHUNK_VERSION})"))
