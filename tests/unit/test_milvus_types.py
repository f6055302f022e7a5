"""Which field types a Milvus target holds (vecbackup.engines.milvus.sink.lacking_types), pure: what Milvus Lite 3.2.2
refuses in create_collection (measured), and the first server version of each newer type. The integration tests
(tests/integration/test_geometry_timestamptz.py) check the refusals against Milvus Lite and the 2.3 server."""

from __future__ import annotations

import pytest

from vecbackup.engines.milvus.sink import lacking_hint, lacking_types
from vecbackup.schema import CollectionSpec, Field, FieldType

F = FieldType


def spec_with(*fields: Field) -> CollectionSpec:
    return CollectionSpec("c", (Field("id", F.INT64, is_primary=True), *fields))


ALL = spec_with(Field("v", F.FLOAT_VECTOR, dim=4), Field("h", F.FLOAT16_VECTOR, dim=4),
                Field("bf", F.BFLOAT16_VECTOR, dim=4), Field("i8", F.INT8_VECTOR, dim=4),
                Field("bin", F.BINARY_VECTOR, dim=8), Field("sp", F.SPARSE_FLOAT_VECTOR),
                Field("g", F.GEOMETRY), Field("t", F.TIMESTAMPTZ),
                Field("s", F.ARRAY, element_type=F.STRUCT, struct_fields=(Field("x", F.INT32),)))


def names(lines: list[str]) -> list[str]:
    return [line.split("'")[1] for line in lines]


@pytest.mark.parametrize(("version", "lacking"), [
    ("v2.3.5", ["bf", "i8", "sp", "g", "t", "s"]),
    ("v2.4.0", ["i8", "g", "t", "s"]),
    ("2.5.12", ["i8", "g", "t", "s"]),
    ("v2.6.0", ["g", "t", "s"]),
    ("v2.6.4", ["t", "s"]),
    ("v2.6.6", ["s"]),
    ("v3.0.0-beta", ["s"]),
    ("a version we cannot read", ["s"]),  # the server is left to say what it lacks
])
def test_a_server_lacks_the_types_newer_than_it(version: str, lacking: list[str]) -> None:
    assert names(lacking_types(ALL, version, lite=False)) == lacking


def test_milvus_lite_3_2_lacks_the_byte_vectors() -> None:
    got = lacking_types(ALL, "milvus_lite-3.2.2", lite=True)
    assert names(got) == ["h", "bf", "i8", "bin", "s"]
    assert got[0] == "field 'h': Milvus Lite has no FLOAT16_VECTOR"
    assert got[-1] == "field 's' (ARRAY<STRUCT>): vecbackup does not write struct arrays into Milvus yet"
    assert names(lacking_types(ALL, "milvus_lite-3.3.0", lite=True)) == ["s"]  # a later Lite: not measured


def test_the_hint_names_the_version_that_holds_everything() -> None:
    assert lacking_hint(spec_with(Field("g", F.GEOMETRY), Field("sp", F.SPARSE_FLOAT_VECTOR)), lite=False) == (
        "restore into Milvus 2.6.4 or newer")
    assert lacking_hint(ALL, lite=False) == "restore into Milvus 2.6.6 or newer"
    assert "COMPATIBILITY" in lacking_hint(ALL, lite=True)


# -- what a backup makes of each type describe_collection reports (MilvusSource._field_from_milvus, no server) ----


def field_from(f: dict[str, object]) -> Field:
    from vecbackup.engines.milvus.source import MilvusSource

    return MilvusSource._field_from_milvus(None, "c", f, {})  # type: ignore[arg-type]  # uses no connection


def test_geometry_and_timestamptz_defaults_as_the_manifest_records_them() -> None:
    from pymilvus import DataType
    from pymilvus.grpc_gen import schema_pb2

    t = field_from({"name": "t", "type": DataType.TIMESTAMPTZ, "nullable": True,
                    "default_value": schema_pb2.ValueField(timestamptz_data=1735660800000001)})
    assert (t.type, t.default_value, t.nullable) == (F.TIMESTAMPTZ, 1735660800000001, True)
    as_text = field_from({"name": "t", "type": DataType.TIMESTAMPTZ,  # a server reporting it as text
                          "default_value": schema_pb2.ValueField(string_data="2025-01-01T00:00:00.000001+08:00")})
    assert as_text.default_value == 1735660800000001
    g = field_from({"name": "g", "type": DataType.GEOMETRY,
                    "default_value": schema_pb2.ValueField(string_data="POINT (0 0)")})
    assert (g.type, g.default_value) == (F.GEOMETRY, "POINT (0 0)")


@pytest.mark.parametrize(("f", "needle"), [
    ({"name": "clips", "type": "ARRAY", "element_type": "STRUCT", "struct_fields": []},
     "field 'clips' of collection 'c' is an ARRAY of STRUCT (a struct array), which vecbackup cannot read"),
    ({"name": "a", "type": "ARRAY", "element_type": "GEOMETRY"}, "field 'a': ARRAY of GEOMETRY is not supported yet"),
    ({"name": "a", "type": "ARRAY", "element_type": "JSON"}, "field 'a': ARRAY of JSON is not supported yet"),
    ({"name": "x", "type": "TEXT"}, "field 'x' of collection 'c' has type TEXT, which vecbackup cannot back up yet"),
    ({"name": "x", "type": "STRUCT"}, "has type STRUCT, which vecbackup cannot back up yet"),
    ({"name": "x", "type": "_ARRAY_OF_VECTOR"}, "has type _ARRAY_OF_VECTOR"),
])
def test_types_a_backup_cannot_read_yet_are_refused_by_name(f: dict[str, object], needle: str) -> None:
    from vecbackup.errors import Unsupported

    with pytest.raises(Unsupported) as e:
        field_from(f)
    assert needle in e.value.message and e.value.exit_code == 9
