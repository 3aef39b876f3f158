"""The ``auth:`` block every HTTP source and switch shares, and the credentials it builds.

::

    auth: { basic: { username: rising-tide, password: "${FEED_PASSWORD}" } }
    auth: { bearer: "${FEED_TOKEN}" }
    auth: { oauth_client_credentials: { token_url: …, client_id: …, client_secret: …, scope: … } }

Exactly one kind; secrets come from the environment. ``build_auth`` turns the block into the
``risingtide.sources.webclient`` credentials (Basic, a static bearer token, or an OAuth 2
client-credentials token that is cached and renewed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from risingtide.clock import Clock
from risingtide.config.errors import show
from risingtide.config.schema import config_error

if TYPE_CHECKING:
    from risingtide.sources.webclient import Auth

__all__ = [
    "AuthSettings",
    "BasicCredentials",
    "ClientCredentials",
    "build_auth",
    "http_url",
]


def http_url(value: str) -> str:
    """``value`` if it is an http(s) URL; a config error otherwise."""
    if not value.startswith(("http://", "https://")):
        raise config_error(f"{show(value)} is not an http:// or https:// URL")
    return value


class BasicCredentials(BaseModel):
    """``{username, password}`` for HTTP Basic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: Annotated[str, Field(min_length=1)]
    password: SecretStr


class ClientCredentials(BaseModel):
    """OAuth 2 client credentials: the token endpoint, client id and secret, optional scope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_url: str
    client_id: Annotated[str, Field(min_length=1)]
    client_secret: SecretStr
    scope: str | None = None

    @field_validator("token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("client_secret")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise config_error("must not be empty")
        return value


class AuthSettings(BaseModel):
    """Exactly one of ``basic``, ``bearer`` or ``oauth_client_credentials``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    basic: BasicCredentials | None = None
    bearer: SecretStr | None = None
    oauth_client_credentials: ClientCredentials | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> AuthSettings:
        chosen = [k for k in ("basic", "bearer", "oauth_client_credentials") if getattr(self, k)]
        if len(chosen) != 1:
            raise config_error(
                "auth takes exactly one of basic, bearer or oauth_client_credentials"
                + (f" (found {', '.join(chosen)})" if chosen else "")
            )
        return self


def build_auth(settings: AuthSettings | None, clock: Clock) -> Auth | None:
    """The credentials for ``settings`` (None for no auth); OAuth tokens are cached."""
    # Imported here: this module is read by sources and responders alike, and importing the
    # sources package at the top would make it import itself through its plugins.
    from risingtide.sources.webclient import BasicAuth, BearerAuth, OAuthClientCredentials

    if settings is None:
        return None
    if settings.basic is not None:
        return BasicAuth(settings.basic.username, settings.basic.password.get_secret_value())
    if settings.bearer is not None:
        return BearerAuth(settings.bearer.get_secret_value())
    cc = settings.oauth_client_credentials
    assert cc is not None  # AuthSettings insists on exactly one
    return OAuthClientCredentials(
        cc.token_url,
        cc.client_id,
        cc.client_secret.get_secret_value(),
        clock=clock,
        extra_form={"scope": cc.scope} if cc.scope else None,
    )
