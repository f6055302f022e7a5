"""The option loader (vecbackup.config): config file tables, secrets, *_file indirection, precedence."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main

from vecbackup import config as settings
from vecbackup.cli import app
from vecbackup.errors import UsageError
from vecbackup.scheduler import parse_schedule

COMMANDS = settings.command_options(typer.main.get_command(app))


def _map(text: str, tmp_path: Path, environ: dict[str, str] | None = None) -> dict:
    f = tmp_path / "vecbackup.toml"
    f.write_text(text)
    return settings.build_default_map(f, COMMANDS, environ or {})


def test_command_options_use_flag_names():
    backup = COMMANDS["backup"]
    assert backup["batch_size"].param == "batch_size"
    assert backup["all"].param == "all_"  # --all: click's name is all_, the config key is "all"
    assert backup["token"].envvar == "VECBACKUP_MILVUS_TOKEN"
    assert backup["collection"].multiple and backup["all"].flag
    assert COMMANDS["restore"]["as"].param == "as_name"


def test_command_table_beats_defaults_and_defaults_reach_every_command(tmp_path):
    dm = _map("[defaults]\nlock_wait = 30\nquiet = true\n[backup]\nbatch_size = 200\nlock_wait = 5\n", tmp_path)
    assert dm["backup"] == {"lock_wait": 5, "quiet": True, "batch_size": 200}
    assert dm["prune"]["lock_wait"] == 30 and dm["gc"]["lock_wait"] == 30
    assert "lock_wait" not in dm.get("list", {})  # list has no --lock-wait: [defaults] skips it
    assert dm["list"] == {"quiet": True}


def test_flag_named_keys_and_lists(tmp_path):
    dm = _map('[backup]\nall = true\n[restore]\nas = "copy"\nindex-params = "v:M=16"\n', tmp_path)
    assert dm["backup"] == {"all_": True}
    assert dm["restore"] == {"as_name": "copy", "index_params": ["v:M=16"]}


def test_env_names_follow_the_flags():
    names = settings.env_names(COMMANDS)
    assert names["backup"] == {"all_": "VECBACKUP_BACKUP_ALL"}
    assert names["restore"]["as_name"] == "VECBACKUP_RESTORE_AS"
    assert "batch_size" not in names["backup"]  # click's own auto_envvar_prefix name is already right


@pytest.mark.parametrize("text, key, known", [
    ("[backup]\nbatch_sise = 3\n", "batch_sise", "batch_size"),
    ("[defaults]\nnope = 1\n", "nope", "keep_last"),
    ("[list]\nlock_wait = 1\n", "lock_wait", "collection"),
])
def test_unknown_key_names_it_and_the_known_ones(tmp_path, text, key, known):
    with pytest.raises(UsageError) as e:
        _map(text, tmp_path)
    msg = str(e.value)
    assert repr(key) in msg and "known:" in msg and known in msg and "\n" not in msg


def test_unknown_table_and_stray_key(tmp_path):
    with pytest.raises(UsageError, match=r"unknown table \[bakup\].*\[backup\]"):
        _map("[bakup]\nbatch_size = 1\n", tmp_path)
    with pytest.raises(UsageError, match="outside any table"):
        _map("batch_size = 1\n", tmp_path)


@pytest.mark.parametrize("table, key", [
    ("backup", "token"), ("defaults", "password"), ("restore", "api_key"), ("defaults", "aws_secret_access_key"),
    ("defaults", "AWS_ACCESS_KEY_ID"), ("backup", "azure_storage_connection_string"), ("defaults", "sas_token"),
    ("backup", "api-key"),
])
def test_secrets_are_refused(tmp_path, table, key):
    with pytest.raises(UsageError) as e:
        _map(f'[{table}]\n{key} = "hunter2"\n', tmp_path)
    msg = str(e.value)
    assert repr(key) in msg and "environment" in msg
    assert "hunter2" not in msg and "\n" not in msg


def test_urls_with_passwords_are_refused(tmp_path):
    with pytest.raises(UsageError, match="'metrics_pushgateway' holds a URL with a password") as e:
        _map('[backup]\nmetrics_pushgateway = "http://u:s3cret@gw:9091"\n', tmp_path)
    assert "s3cret" not in str(e.value)
    with pytest.raises(UsageError, match="'source' holds a URL with a password"):
        parse_schedule({"jobs": [{**JOB, "source": "milvus://root:s3cret@db:19530"}]})
    with pytest.raises(UsageError, match="holds a URL with a password"):
        parse_schedule({"jobs": [JOB], "metrics_pushgateway": "http://u:p@gw"})
    assert parse_schedule({"jobs": [{**JOB, "source": "milvus://root@db:19530"}]}).jobs  # a user alone is fine


def test_top_level_secret_is_refused_as_a_secret(tmp_path):
    with pytest.raises(UsageError, match="'token' is a secret"):
        _map('token = "x"\n', tmp_path)


def test_secret_file_indirection(tmp_path):
    secret = tmp_path / "milvus-token"
    secret.write_text("root:Milvus\n")
    dm = _map(f'[defaults]\ntoken_file = "{secret}"\n[restore]\npassword_file = "{secret}"\n', tmp_path)
    assert callable(dm["backup"]["token"]) and dm["backup"]["token"]() == "root:Milvus"
    assert dm["restore"]["password"]() == "root:Milvus"
    assert "token" not in dm.get("list", {})


def test_missing_secret_file_fails_only_when_used(tmp_path):
    dm = _map('[backup]\ntoken_file = "/does/not/exist"\n', tmp_path)  # loading does not read it
    with pytest.raises(UsageError, match="cannot read token_file"):
        dm["backup"]["token"]()


def test_env_file_variables_beat_the_config_file(tmp_path):
    f1, f2 = tmp_path / "a", tmp_path / "b"
    f1.write_text("from-config")
    f2.write_text("from-env-file\n")
    env = {"VECBACKUP_MILVUS_TOKEN_FILE": str(f2)}
    dm = _map(f'[backup]\ntoken_file = "{f1}"\n', tmp_path, env)
    assert dm["backup"]["token"]() == "from-env-file"
    assert dm["collections"]["token"]() == "from-env-file"
    # the variable itself wins over its _FILE twin: click reads it, nothing goes into the default_map
    env["VECBACKUP_MILVUS_TOKEN"] = "direct"
    dm = _map(f'[backup]\ntoken_file = "{f1}"\n', tmp_path, env)
    assert dm["backup"]["token"]() == "from-config"
    assert "token" not in dm.get("collections", {})


def test_bad_values(tmp_path):
    with pytest.raises(UsageError, match="must be true or false"):
        _map('[backup]\nall = "yes"\n', tmp_path)
    with pytest.raises(UsageError, match="not valid TOML"):
        _map("[backup\n", tmp_path)


def test_schedule_keys_are_left_to_the_scheduler(tmp_path):
    dm = _map('heartbeat = "/tmp/hb"\n[[jobs]]\nname = "a"\n[backup]\nbatch_size = 7\n', tmp_path)
    assert dm == {"backup": {"batch_size": 7}}


def test_find_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert settings.find_config(None) is None
    (tmp_path / "vecbackup.toml").write_text("")
    assert settings.find_config(None) == tmp_path / "vecbackup.toml"
    other = tmp_path / "other.toml"
    other.write_text("")
    assert settings.find_config(str(other)) == other
    with pytest.raises(UsageError, match="not found"):
        settings.find_config(str(tmp_path / "missing.toml"))


# -- the schedule file --------------------------------------------------------------------------------------

JOB = {"name": "a", "source": "milvus-lite:///x.db", "store": "/tmp/s", "collections": ["c"], "every": "1h"}


def test_schedule_parses_jobs():
    daily = {k: v for k, v in JOB.items() if k != "every"} | {"name": "b", "at": "02:15", "keep_daily": 7}
    plan = parse_schedule({"heartbeat": "/tmp/hb", "jobs": [JOB, daily]})
    assert plan.heartbeat == Path("/tmp/hb")
    a, b = plan.jobs
    assert a.interval == 3600 and a.policy is None and a.collections == ("c",)
    assert b.describe() == "daily at 02:15 UTC" and b.policy is not None and b.policy.keep_daily == 7
    assert parse_schedule({"jobs": [JOB]}).heartbeat is None


@pytest.mark.parametrize("change, message", [
    ({"token": "x"}, "'token' is a secret"),
    ({"colections": ["c"]}, "unknown key 'colections'"),
    ({"every": None}, "one of every"),
    ({"at": "02:15"}, "one of every"),
    ({"all": True}, "say which collections"),
    ({"batch_size": "10"}, "batch_size must be int"),
    ({"every": "0s"}, "shorter than a second"),
    ({"keep_last": -1}, "must not be negative"),
    ({"keep_within": "soon"}, "bad duration"),
])
def test_schedule_rejects(change, message):
    job = {k: v for k, v in {**JOB, **change}.items() if v is not None}
    with pytest.raises(UsageError, match=message):
        parse_schedule({"jobs": [job]})


@pytest.mark.parametrize("every, instead", [
    ("0 2 * * *", 'at = "02:00" for a run every day at 02:00 UTC'),
    ("*/15 * * * *", 'at = "HH:MM" for a run every day at that time, UTC'),
])
def test_a_cron_expression_is_refused_naming_the_file_the_job_and_the_key(tmp_path: Path, every: str,
                                                                         instead: str) -> None:
    from vecbackup.scheduler import load_schedule

    path = tmp_path / "schedule.toml"
    path.write_text(f'[[jobs]]\nname = "nightly"\nsource = "milvus-lite:///x.db"\nstore = "/tmp/s"\nall = true\n'
                    f'every = "{every}"\n')
    with pytest.raises(UsageError) as e:
        load_schedule(path)
    assert str(e.value) == (f"schedule file {str(path)!r} job 'nightly': every = {every!r}: cron syntax is not "
                            f'supported (give a duration, e.g. every = "6h", or {instead})')


def test_schedule_errors_name_the_job_and_the_key_as_the_file_spells_it() -> None:
    for change, message in [({"every": "soon"}, "job 'a': every: bad duration 'soon'"),
                            ({"keep_within": "soon"}, "job 'a': keep_within: bad duration 'soon'"),
                            ({"gc_min_age": "x"}, "job 'a': gc_min_age: bad duration 'x'"),
                            ({"keep_last": -1}, "job 'a': Policy(keep_last=-1) must not be negative"),
                            ({"batch_size": 0}, "job 'a': BackupOptions(batch_size=0) is out of range")]:
        with pytest.raises(UsageError) as e:
            parse_schedule({"jobs": [{**JOB, **change}]})
        assert message in e.value.message and "--" not in str(e.value), (change, str(e.value))


def test_schedule_rejects_duplicate_names_and_no_jobs():
    with pytest.raises(UsageError, match="repeated: a"):
        parse_schedule({"jobs": [JOB, JOB]})
    with pytest.raises(UsageError, match="no jobs"):
        parse_schedule({"heartbeat": "/tmp/x"})
    with pytest.raises(UsageError, match="unknown key 'backup'"):
        parse_schedule({"jobs": [JOB], "backup": {}})
    assert parse_schedule({"jobs": [JOB], "backup": {}}, ignore=frozenset({"backup"})).jobs[0].name == "a"


def test_the_example_file_is_both_a_config_file_and_a_schedule():
    from vecbackup.scheduler import load_schedule

    example = Path(__file__).parents[2] / "examples" / "vecbackup.toml"
    dm = settings.build_default_map(example, COMMANDS, {})
    assert dm["backup"]["batch_size"] == 5000 and dm["prune"]["keep_daily"] == 7 and dm["gc"]["lock_wait"] == 60
    plan = load_schedule(example, ignore=frozenset({settings.DEFAULTS_TABLE, *COMMANDS}))
    assert [j.name for j in plan.jobs] == ["articles", "everything-nightly"]
    assert plan.heartbeat == Path("/tmp/vecbackup.heartbeat")
