"""The environment a key command runs in (vecbackup.passphrase.key_command_environment): what it keeps, what it
never passes, and what VECBACKUP_KEY_COMMAND_ENV changes."""

from __future__ import annotations

import pytest

from vecbackup.errors import UsageError
from vecbackup.passphrase import KEY_COMMAND_NEVER, KEY_COMMAND_NEVER_PREFIXES, key_command_environment

OURS = {  # everything vecbackup reads that is a secret, or its own
    "VECBACKUP_PASSPHRASE": "pw", "VECBACKUP_NEW_PASSPHRASE": "new", "VECBACKUP_PASSPHRASE_FILE": "/p",
    "VECBACKUP_NEW_PASSPHRASE_FILE": "/n", "VECBACKUP_KEY_COMMAND": "vault", "VECBACKUP_MILVUS_TOKEN": "t",
    "VECBACKUP_MILVUS_PASSWORD": "p", "VECBACKUP_QDRANT_API_KEY": "k", "VECBACKUP_LIST_PASSPHRASE_FILE": "/q",
    "MILVUS_TOKEN": "t", "MILVUS_PASSWORD": "p", "QDRANT_API_KEY": "k", "AZURE_STORAGE_KEY": "k",
    "AZURE_STORAGE_SAS_TOKEN": "s", "AZURE_STORAGE_CONNECTION_STRING": "c",
}
THEIRS = {  # what a secrets-manager client needs
    "PATH": "/usr/bin", "HOME": "/root", "USER": "u", "LANG": "C.UTF-8", "LC_ALL": "C", "TZ": "UTC", "TMPDIR": "/t",
    "VAULT_ADDR": "https://vault:8200", "VAULT_TOKEN": "s.x", "AWS_REGION": "eu-west-1", "AWS_PROFILE": "p",
    "AWS_WEB_IDENTITY_TOKEN_FILE": "/w", "AZURE_CLIENT_ID": "c", "GOOGLE_APPLICATION_CREDENTIALS": "/g",
    "OP_SERVICE_ACCOUNT_TOKEN": "op", "HTTPS_PROXY": "http://proxy:3128", "SSL_CERT_FILE": "/ca.pem",
    "IDENTITY_ENDPOINT": "http://169.254.169.254", "KUBECONFIG": "/k",
}
OTHER = {"SOMETHING_ELSE": "x", "DATABASE_URL": "postgres://u:p@db/x", "PYTHONPATH": "/src", "GITHUB_TOKEN": "g"}


def test_a_key_command_gets_what_clients_need_and_none_of_our_secrets() -> None:
    assert key_command_environment({**OURS, **THEIRS, **OTHER}) == THEIRS


def test_vecbackup_key_command_env_adds_and_withholds() -> None:
    env = {**OURS, **THEIRS, **OTHER, "MYCORP_VAULT_ROLE": "r", "MYCORP_REGION": "x",
           "VECBACKUP_KEY_COMMAND_ENV": " SOMETHING_ELSE, MYCORP_*,-AWS_PROFILE,-VAULT_*,"}
    got = key_command_environment(env)
    want = {k: v for k, v in THEIRS.items() if k != "AWS_PROFILE" and not k.startswith("VAULT_")}
    assert got == {**want, "SOMETHING_ELSE": "x", "MYCORP_VAULT_ROLE": "r", "MYCORP_REGION": "x"}
    # a prefix that covers one of our secrets still does not pass it
    assert key_command_environment({**OURS, "VECBACKUP_KEY_COMMAND_ENV": "AZURE_*,MILVUS*,*"}) == {}


@pytest.mark.parametrize("entry", ["VECBACKUP_PASSPHRASE", "VECBACKUP_NEW_PASSPHRASE", "VECBACKUP_PASSPHRASE*",
                                   "VECBACKUP_*", "QDRANT_API_KEY", "AZURE_STORAGE_KEY", "MILVUS_TOKEN"])
def test_naming_a_secret_we_keep_is_refused(entry: str) -> None:
    with pytest.raises(UsageError) as ei:
        key_command_environment({"VECBACKUP_KEY_COMMAND_ENV": f"PATH,{entry}", "VECBACKUP_PASSPHRASE": "pw"})
    assert ei.value.exit_code == 2 and entry in str(ei.value) and "never given" in str(ei.value)
    assert "pw" not in str(ei.value)


@pytest.mark.parametrize("entry", ["A B", "-", "1ABC", "A=B", "A*B", "$HOME"])
def test_an_entry_that_is_no_name_is_refused(entry: str) -> None:
    with pytest.raises(UsageError) as ei:
        key_command_environment({"VECBACKUP_KEY_COMMAND_ENV": entry})
    assert "is not a variable name" in str(ei.value)


def test_the_never_list_covers_every_secret_vecbackup_reads() -> None:
    """Kept in step with the modules that read them (a new secret variable must be added to KEY_COMMAND_NEVER)."""
    from vecbackup import urls
    from vecbackup.stores import azure

    read = {*urls.ENV_TOKEN, *urls.ENV_PASSWORD, *urls.ENV_USER, *urls.ENV_QDRANT_API_KEY,
            azure.ENV_KEY, azure.ENV_SAS, azure.ENV_CONNECTION_STRING}
    assert {n for n in read if not n.startswith(KEY_COMMAND_NEVER_PREFIXES)} <= KEY_COMMAND_NEVER
