"""The ``users:`` section and the server keys that go with it: loaded, and never leaked.

The error cases are fixtures (``bad_role``, ``weak_secret_key``, ``malformed_hash``,
``users_without_secret_key``, ``duplicate_token``, …); these tests cover what loads.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from argon2 import PasswordHasher
from config_fakes import ONE_LINE, check, load, write

from risingtide.api.auth import hash_token

SECRET = "a-secret-from-the-environment-QmW8zT3k"
HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("correct horse")
TOKEN_HASH = hash_token("rt_some-token")
OTHER_HASH = hash_token("rt_another-token")

BASE = ONE_LINE


def test_users_load_with_their_roles_and_the_secret_from_the_environment(tmp_path: Path) -> None:
    """Names, roles, hashes and tokens load; the secret comes from ${RISINGTIDE_SECRET_KEY}."""
    text = BASE + f"""
server:
  secret_key: "${{RISINGTIDE_SECRET_KEY}}"
  public_url: https://risingtide.council.example/
  ack_link_ttl: 4h
users:
  priya:
    name: Priya Shah
    role: duty_manager
    password_hash: "{HASH}"
    tokens: ["{TOKEN_HASH.upper().replace("SHA256", "sha256")}"]
  bot: {{ name: Overnight script, role: viewer, tokens: ["{OTHER_HASH}"] }}
"""
    config = load(write(tmp_path, text), {"RISINGTIDE_SECRET_KEY": SECRET})
    assert config.server.secret_key == SECRET
    assert config.server.public_url == "https://risingtide.council.example"
    assert config.server.ack_link_ttl == timedelta(hours=4)
    priya = config.users["priya"]
    assert (priya.name, priya.role, priya.password_hash) == ("Priya Shah", "duty_manager", HASH)
    assert priya.token_hashes == {TOKEN_HASH}  # hex is normalised to lower case
    assert config.users["bot"].password_hash is None
    assert priya.may("viewer") and priya.may("duty_manager") and not priya.may("admin")


def test_without_users_the_new_keys_have_their_defaults(tmp_path: Path) -> None:
    """No users and no secret is a valid config: links off, reads open."""
    config = load(write(tmp_path, BASE))
    assert config.users == {}
    assert config.server.secret_key is None
    assert config.server.public_url is None
    assert config.server.ack_link_ttl == timedelta(hours=24)


def test_secrets_stay_out_of_reprs_and_error_messages(tmp_path: Path) -> None:
    """A weak secret is reported without echoing it; a loaded config's repr hides credentials."""
    weak = "Sh0rt-but-secret"
    text = BASE + (
        f'server:\n  secret_key: "${{KEY}}"\n'
        f'users:\n  p: {{ name: P, role: admin, password_hash: "{HASH}" }}\n'
    )
    _, errors, _ = check(write(tmp_path, text), {"KEY": weak})
    assert [e.message for e in errors] == [
        "server.secret_key: is 16 characters long; it needs at least 32 (make one with: "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
    ]
    assert weak not in str(errors)

    config = load(write(tmp_path, text), {"KEY": SECRET})
    shown = repr(config) + repr(config.server) + repr(config.users)
    assert SECRET not in shown and HASH not in shown
