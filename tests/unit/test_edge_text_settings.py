"""A text payload index's stopwords, stemmer and scoring: Qdrant Edge's objects <-> the JSON a Qdrant server reports
for them (engines/qdrant/edge.py: text_setting_json, and back _Builder.text_setting / payload_index), checked against
qdrant-client's models of that JSON; no shard is opened."""

from __future__ import annotations

from typing import Any

import pytest
import qdrant_edge as q
from qdrant_client.http import models as m

from vecbackup.engines.qdrant.edge import _Builder, text_setting_json


def _members(cls: Any) -> list[Any]:
    return [getattr(cls, n) for n in dir(cls) if not n.startswith("_")]


def _round_trip(key: str, value: Any) -> Any:
    """Edge's object -> JSON -> Edge's object -> JSON, the two JSONs equal; the JSON."""
    doc = text_setting_json(key, value)
    assert text_setting_json(key, _Builder(q).text_setting(key, doc)) == doc
    return doc


def test_every_language_of_edge_is_a_servers_and_round_trips() -> None:
    languages = _members(q.Language)
    assert sorted(_round_trip("stopwords", lang) for lang in languages) == sorted(x.value for x in m.Language)
    stemmers = [_round_trip("stemmer", q.SnowballParams(lang)) for lang in _members(q.SnowballLanguage)]
    assert sorted(s["language"] for s in stemmers) == sorted(x.value for x in m.SnowballLanguage)
    assert {s["type"] for s in stemmers} == {"snowball"}


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("stopwords", q.StopwordsSet(languages={q.Language.German, q.Language.English}, custom={"zz", "Ab", "a b"}),
     {"languages": ["english", "german"], "custom": ["Ab", "a b", "zz"]}),  # sorted, as the server writes them
    ("stopwords", q.StopwordsSet(custom={"x"}), {"custom": ["x"]}),
    ("stopwords", q.StopwordsSet(languages=set(), custom=set()), {"languages": [], "custom": []}),
    ("stopwords", q.StopwordsSet(), {}),
    ("stopwords", q.Language.Hinglish, "hinglish"),
    ("stemmer", q.SnowballParams(q.SnowballLanguage.Armenian), {"type": "snowball", "language": "armenian"}),
    ("stemmer", q.DisabledStemmer(), {"type": "none"}),
    ("scoring", q.TextScoringParams(q.TextScoringType.Bm25), {"type": "bm25"}),
    ("scoring", True, True),
])
def test_each_setting_is_the_json_a_server_reports(key: str, value: Any, expected: Any) -> None:
    doc = _round_trip(key, value)
    assert doc == expected
    server = m.TextIndexParams.model_validate({"type": "text", key: doc})  # qdrant-client reads it as a server's
    assert server.model_dump(mode="json", exclude_none=True) == {"type": "text", key: doc}


def test_a_text_index_from_a_servers_backup_is_built_whole_on_edge() -> None:
    recorded = {"type": "text", "tokenizer": "multilingual", "min_token_len": 2, "lowercase": True,
                "phrase_matching": True, "stopwords": {"languages": ["english", "german"], "custom": ["qdrant"]},
                "stemmer": {"type": "snowball", "language": "english"}, "scoring": {"type": "bm25"}}
    params, notes = _Builder(q).payload_index("body", m.TextIndexParams.model_validate(recorded).model_dump(
        mode="json", exclude_none=True))
    assert notes == []
    assert {k: text_setting_json(k, getattr(params, k)) for k in ("stopwords", "stemmer", "scoring")} == {
        k: recorded[k] for k in ("stopwords", "stemmer", "scoring")}
    assert (params.min_token_len, params.phrase_matching, repr(params.tokenizer)) == (2, True,
                                                                                      "TokenizerType.Multilingual")


def test_what_edge_has_no_place_for_is_left_out_with_a_note() -> None:
    params, notes = _Builder(q).payload_index("body", {
        "type": "text", "stopwords": {"languages": ["english"], "regex": "x"}, "stemmer": {"type": "porter"},
        "scoring": {"type": "bm42"}, "lowercase": False})
    assert notes == [
        "the stopwords setting of the text payload index on 'body' is not re-applied on Qdrant Edge: Qdrant Edge's "
        "stopwords have no regex",
        "the stemmer setting of the text payload index on 'body' is not re-applied on Qdrant Edge: Qdrant Edge has no "
        'stemmer {"type": "porter"}',
        "the scoring setting of the text payload index on 'body' is not re-applied on Qdrant Edge: Qdrant Edge has no "
        "TextScoringType 'bm42'"]
    assert (params.stopwords, params.stemmer, params.scoring, params.lowercase) == (None, None, None, False)


def test_a_setting_of_a_kind_not_known_is_not_recorded() -> None:
    assert text_setting_json("stemmer", q.SnowballLanguage.English) is None
    assert text_setting_json("stopwords", {"english"}) is None
    assert text_setting_json("scoring", q.TextScoringType.Bm25) is None
