"""URL parsing (vecbackup.urls): Milvus server / Milvus Lite URLs, store URLs, secret hygiene."""

from __future__ import annotations

import dataclasses

import pytest

from vecbackup.errors import UsageError, VecbackupError
from vecbackup.urls import DEFAULT_MILVUS_PORT, MilvusURL, StoreURL, parse_milvus_url, parse_store_url

NOENV: dict[str, str] = {}


def parse(url: str, **kw: object) -> MilvusURL:
    kw.setdefault("environ", NOENV)
    return parse_milvus_url(url, **kw)  # type: ignore[arg-type]


def usage_error(url: str, **kw: object) -> UsageError:
    with pytest.raises(UsageError) as ei:
        parse(url, **kw)
    assert ei.value.exit_code == 2
    assert isinstance(ei.value, VecbackupError)
    return ei.value


# --------------------------------------------------------------------------- milvus:// URLs


def test_host_and_port() -> None:
    u = parse("milvus://db.example.com:1234")
    assert u.uri == "http://db.example.com:1234"
    assert u.display == "milvus://db.example.com:1234"
    assert not u.lite
    assert u.db_name == ""
    assert (u.user, u.password, u.token, u.server_pem_path) == ("", "", "", "")
    assert u.engine == "milvus"


def test_default_port() -> None:
    assert DEFAULT_MILVUS_PORT == 19530
    u = parse("milvus://localhost")
    assert u.uri == "http://localhost:19530"
    assert u.display == "milvus://localhost:19530"
    assert parse("milvus://localhost/").uri == "http://localhost:19530"


@pytest.mark.parametrize("scheme", ["milvus+https", "milvuss", "MILVUS+HTTPS", "Milvuss"])
def test_https_schemes(scheme: str) -> None:
    u = parse(f"{scheme}://secure.example.com:443")
    assert u.uri == "https://secure.example.com:443"
    assert u.display == f"{scheme.lower()}://secure.example.com:443"


@pytest.mark.parametrize("scheme", ["milvus", "milvus+http", "MILVUS"])
def test_http_schemes(scheme: str) -> None:
    assert parse(f"{scheme}://h:1").uri == "http://h:1"


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("milvus://[::1]:19531", "http://[::1]:19531"),
        ("milvus://[::1]", "http://[::1]:19530"),
        ("milvus+https://[2001:db8::7]:443/prod", "https://[2001:db8::7]:443"),
    ],
)
def test_ipv6_host(url: str, uri: str) -> None:
    u = parse(url)
    assert u.uri == uri
    assert u.display.split("://", 1)[1].startswith("[")


def test_db_from_path() -> None:
    u = parse("milvus://h:19530/analytics")
    assert u.db_name == "analytics"
    assert u.uri == "http://h:19530"  # the db never goes into the uri
    assert u.display == "milvus://h:19530/analytics"
    assert parse("milvus://h/analytics/").db_name == "analytics"


def test_db_from_query() -> None:
    u = parse("milvus://h:19530?db=sales")
    assert u.db_name == "sales"
    assert u.uri == "http://h:19530"
    assert u.display == "milvus://h:19530/sales"


def test_db_path_wins_over_query() -> None:
    assert parse("milvus://h/a?db=b").db_name == "a"


def test_user_password_in_url() -> None:
    u = parse("milvus://alice:s3cr%40t!@h:19530/db1")
    assert u.user == "alice"
    assert u.password == "s3cr@t!"  # percent-decoded
    assert u.uri == "http://h:19530"
    for shown in (u.display, repr(u), str(u)):
        assert "s3cr" not in shown
        assert "%40" not in shown
    assert "alice" not in u.display  # display carries no credentials at all
    assert u.display == "milvus://h:19530/db1"


def test_password_and_token_not_in_repr() -> None:
    u = parse("milvus://bob:pw-XYZZY@h", token="tok-PLUGH")
    assert u.password == "pw-XYZZY"
    assert u.token == "tok-PLUGH"
    assert "XYZZY" not in repr(u)
    assert "PLUGH" not in repr(u)
    assert "XYZZY" not in u.display and "PLUGH" not in u.display


def test_credentials_from_kwargs_win_over_url_and_env() -> None:
    env = {"VECBACKUP_MILVUS_USER": "envuser", "VECBACKUP_MILVUS_PASSWORD": "envpw"}
    u = parse("milvus://urluser:urlpw@h", user="kwuser", password="kwpw", environ=env)
    assert (u.user, u.password) == ("kwuser", "kwpw")
    u = parse("milvus://urluser:urlpw@h", environ=env)
    assert (u.user, u.password) == ("urluser", "urlpw")
    u = parse("milvus://h", environ=env)
    assert (u.user, u.password) == ("envuser", "envpw")


def test_user_password_env_precedence() -> None:
    env = {"MILVUS_USER": "m_user", "MILVUS_PASSWORD": "m_pw"}
    assert (parse("milvus://h", environ=env).user, parse("milvus://h", environ=env).password) == ("m_user", "m_pw")
    env |= {"VECBACKUP_MILVUS_USER": "v_user", "VECBACKUP_MILVUS_PASSWORD": "v_pw"}
    u = parse("milvus://h", environ=env)
    assert (u.user, u.password) == ("v_user", "v_pw")


def test_token_from_kwargs() -> None:
    env = {"VECBACKUP_MILVUS_TOKEN": "env-token", "MILVUS_TOKEN": "other"}
    assert parse("milvus://h", token="kw-token", environ=env).token == "kw-token"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ""),
        ({"MILVUS_TOKEN": "generic"}, "generic"),
        ({"VECBACKUP_MILVUS_TOKEN": "specific"}, "specific"),
        ({"VECBACKUP_MILVUS_TOKEN": "specific", "MILVUS_TOKEN": "generic"}, "specific"),
        ({"VECBACKUP_MILVUS_TOKEN": "", "MILVUS_TOKEN": "generic"}, "generic"),  # empty counts as unset
        ({"UNRELATED": "x"}, ""),
    ],
)
def test_token_from_environ(env: dict[str, str], expected: str) -> None:
    u = parse("milvus://h", environ=env)
    assert u.token == expected
    if expected:
        assert expected not in repr(u) and expected not in u.display


def test_environ_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VECBACKUP_MILVUS_TOKEN", "MILVUS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MILVUS_TOKEN", "from-os")
    assert parse_milvus_url("milvus://h").token == "from-os"
    # an explicit environ dict replaces os.environ entirely
    assert parse_milvus_url("milvus://h", environ={}).token == ""


def test_server_pem_path_passed_through() -> None:
    assert parse("milvus+https://h", server_pem_path="/etc/ca.pem").server_pem_path == "/etc/ca.pem"


def test_milvus_url_is_frozen() -> None:
    u = parse("milvus://h")
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.password = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- milvus-lite://


def test_lite_absolute_path() -> None:
    u = parse("milvus-lite:///var/data/vectors.db")
    assert u.lite
    assert u.uri == "/var/data/vectors.db"
    assert u.display == "milvus-lite:///var/data/vectors.db"
    assert u.engine == "milvus"


def test_lite_relative_path() -> None:
    u = parse("milvus-lite://relative.db")
    assert u.lite
    assert u.uri == "relative.db"
    assert u.display == "milvus-lite://relative.db"
    u = parse("milvus-lite://sub/dir/file.db")
    assert u.uri == "sub/dir/file.db"


def test_lite_percent_decoding() -> None:
    assert parse("milvus-lite:///tmp/my%20file.db").uri == "/tmp/my file.db"


def test_lite_ignores_credentials() -> None:
    u = parse("milvus-lite:///x.db", token="t", environ={"MILVUS_TOKEN": "e"})
    assert u.token == "" and u.password == ""


# --------------------------------------------------------------------------- errors


def test_empty_lite_path() -> None:
    e = usage_error("milvus-lite://")
    assert "no file path" in e.message
    assert e.hint and "milvus-lite:///" in e.hint


@pytest.mark.parametrize("url", ["http://h:19530", "https://h", "grpc://h", "postgres://u:p@h/db", "s3://b"])
def test_bad_scheme(url: str) -> None:
    e = usage_error(url)
    assert "unsupported" in e.message
    assert url.split("://")[0] + "://" in e.message
    assert e.hint and "milvus://" in e.hint


@pytest.mark.parametrize("url", ["", "just-a-host", "/abs/path"])
def test_no_scheme(url: str) -> None:
    e = usage_error(url)
    assert "unsupported" in e.message


@pytest.mark.parametrize("url", ["milvus://", "milvus:///db", "milvus://:19530", "milvus+https://"])
def test_no_host(url: str) -> None:
    e = usage_error(url)
    assert "no host" in e.message


@pytest.mark.parametrize("url", ["milvus://h:abc", "milvus://h:99999", "milvus://h:-1", "milvus://h:19530x"])
def test_bad_port(url: str) -> None:
    e = usage_error(url)
    assert "port" in e.message


def test_unparseable_url() -> None:
    e = usage_error("milvus://[::1")
    assert "bad URL" in e.message


SECRET = "Pa55w0rd-SECRET"


@pytest.mark.parametrize(
    "url",
    [
        f"milvus://admin:{SECRET}@",  # no host
        f"milvus://admin:{SECRET}@host:notaport",  # bad port
        f"milvus://admin:{SECRET}@host:70000",  # port out of range
        f"milvus://:{SECRET}@host:x",  # no user name
        f"milvus://admin:{SECRET}@[::1",  # unparseable
        f"ftp://admin:{SECRET}@host",  # bad scheme
        f"http://admin:{SECRET}@host:19530",
    ],
)
def test_errors_never_contain_password(url: str) -> None:
    e = usage_error(url)
    for text in (str(e), e.message, e.hint or "", repr(e)):
        assert SECRET not in text


def test_error_redacts_percent_encoded_password() -> None:
    e = usage_error("milvus://admin:p%40ss%2Fword@host:bad")
    assert "p%40ss" not in str(e) and "p@ss" not in str(e)
    assert "***" in str(e)


@pytest.mark.parametrize("sep", ["/", "?", "#"])
def test_errors_never_contain_password_with_url_delimiters(sep: str) -> None:
    password = f"tops{sep}ecret99"
    e = usage_error(f"milvus://admin:{password}@host:19530")
    assert password not in str(e)
    assert "ecret99" not in str(e)


# --------------------------------------------------------------------------- store URLs


def test_store_file_absolute() -> None:
    s = parse_store_url("file:///srv/backups")
    assert s == StoreURL("file", "/srv/backups", "file:///srv/backups")


def test_store_file_relative() -> None:
    s = parse_store_url("file://backups/milvus")
    assert s.scheme == "file"
    assert s.location == "backups/milvus"
    assert s.display == "file://backups/milvus"


def test_store_file_percent_decoded() -> None:
    assert parse_store_url("file:///srv/my%20backups").location == "/srv/my backups"


@pytest.mark.parametrize("path", ["/srv/backups", "backups", "./rel/dir", "C-drive-ish_name"])
def test_store_plain_path(path: str) -> None:
    s = parse_store_url(path)
    assert s.scheme == "file"
    assert s.location == path
    assert s.display == f"file://{path}"


def test_store_file_scheme_case_insensitive() -> None:
    assert parse_store_url("FILE:///x").location == "/x"


@pytest.mark.parametrize("url", ["", "file://"])
def test_store_empty(url: str) -> None:
    with pytest.raises(UsageError) as ei:
        parse_store_url(url)
    assert ei.value.exit_code == 2
    assert ei.value.hint and "file:///" in ei.value.hint


@pytest.mark.parametrize(
    ("url", "scheme", "location", "prefix"),
    [
        ("s3://bucket/prefix", "s3", "bucket", "prefix/"),
        ("S3://bucket", "s3", "bucket", ""),
        ("s3://bucket/a/b/", "s3", "bucket", "a/b/"),
        ("azure://container/x", "azure", "container", "x/"),
        ("azure://container", "azure", "container", ""),
    ],
)
def test_store_cloud_urls(url: str, scheme: str, location: str, prefix: str) -> None:
    parsed = parse_store_url(url)
    assert (parsed.scheme, parsed.location, parsed.prefix) == (scheme, location, prefix)
    assert parsed.display == f"{scheme}://{location}/{prefix}"


def test_store_url_options() -> None:
    parsed = parse_store_url("s3://b/p?endpoint=http://127.0.0.1:8333&region=eu-west-1&path_style=1&concurrency=8")
    assert parsed.options == {"endpoint": "http://127.0.0.1:8333", "region": "eu-west-1", "path_style": "1",
                              "concurrency": "8"}
    assert parse_store_url("azure://c?account=acct&tier=Cool").options == {"account": "acct", "tier": "Cool"}


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("s3://b/p?secret_key=abc", "secret"),
        ("azure://c?sas=sv=2020&sig=XYZ", "secret"),
        ("s3://b?bogus=1", "unknown"),
        ("s3://b?concurrency=0", "concurrency"),
        ("s3://key:secretvalue@b/p", "credentials"),
        ("s3:///p", "no bucket"),
        ("azure:///p", "no container"),
        ("s3://b/a/../c", ".."),
    ],
)
def test_store_url_rejects(url: str, needle: str) -> None:
    with pytest.raises(UsageError) as ei:
        parse_store_url(url)
    assert ei.value.exit_code == 2
    assert needle in ei.value.message
    assert "secretvalue" not in str(ei.value) and "XYZ" not in str(ei.value)


@pytest.mark.parametrize("url", ["gs://bucket", "http://host/path", "ftp://x"])
def test_store_unknown_scheme(url: str) -> None:
    with pytest.raises(UsageError) as ei:
        parse_store_url(url)
    assert ei.value.exit_code == 2
    assert "unsupported" in ei.value.message
    assert url.split("://")[0] in ei.value.message


def test_columnar_setting() -> None:
    assert parse_milvus_url("milvus://h:19530", environ=NOENV).columnar is True
    assert parse_milvus_url("milvus://h:19530/db?columnar=off", environ=NOENV).columnar is False
    lite = parse_milvus_url("milvus-lite:///tmp/x.db?columnar=off", environ=NOENV)
    assert (lite.columnar, lite.uri) == (False, "/tmp/x.db")
    with pytest.raises(UsageError, match="use columnar=on or columnar=off"):
        parse_milvus_url("milvus://h?columnar=fast", environ=NOENV)
