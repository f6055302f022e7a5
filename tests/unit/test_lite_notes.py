"""The one note a Milvus Lite backup writes on the build parameters Lite does not report: every index of the
collection once, and an example of what to give restore and drill taken from an index type that has parameters."""

from __future__ import annotations

from vecbackup.engines.milvus.source import unreported_index_params
from vecbackup.schema import Index


def test_one_note_names_every_index_and_an_example_of_its_type() -> None:
    note = unreported_index_params([Index("v", "IVF_FLAT", "v", "L2", None), Index("t", "INVERTED", "t", None, None),
                                    Index("j", "INVERTED", "j_path", None, None)])
    assert note.startswith("Milvus Lite does not report index parameters (index 'j_path' on 'j', index 't' on 't', "
                           "index 'v' on 'v'): ")
    assert "(e.g. --index-params v:nlist=128)" in note and 'index_params = ["v:nlist=128"]' in note


def test_without_an_index_type_that_takes_parameters_the_example_is_generic() -> None:
    note = unreported_index_params([Index("v", "FLAT", "v", "L2", None)])
    assert "(e.g. --index-params v:PARAM=VALUE)" in note and "[restore] and [drill]" in note
