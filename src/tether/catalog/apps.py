"""The built-in catalogue of third-party apps, read once from `apps.json` beside this module.

`App` is the whole entry, OAuth endpoints included, for Tether's own use; `AppOut` is what
`GET /apps` shows (`AppOut.model_validate(app)`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    PlainSerializer,
    TypeAdapter,
    model_validator,
)
from pydantic.alias_generators import to_camel

from tether.schemas import Model

AuthType = Literal["oauth2", "api_key", "basic"]
TokenAuthMethod = Literal["client_secret_post", "client_secret_basic"]

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


def _https(url: HttpUrl) -> HttpUrl:
    if url.scheme != "https":
        raise ValueError("must be an https URL")
    return url


def _regex(pattern: str) -> str:
    # A bad pattern fails the catalogue at load, not a user's form later.
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return pattern


HttpsUrl = Annotated[HttpUrl, AfterValidator(_https)]
# Shared by every caller of the cached catalogue: a read-only view, so nobody edits it in place.
FrozenParams = Annotated[
    Mapping[str, str],
    AfterValidator(lambda params: MappingProxyType(dict(params))),
    PlainSerializer(dict, return_type=dict[str, str]),
]


class _Entry(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


class AppField(_Entry):
    """One credential input of an api_key or basic app; the modal names its input `name`."""

    name: Annotated[str, Field(pattern=r"^[a-z][A-Za-z0-9]*$")]
    label: str
    secret: bool
    required: bool
    placeholder: str | None = None
    pattern: Annotated[str, AfterValidator(_regex)] | None = None


class App(_Entry):
    app: Slug
    name: str
    auth_type: AuthType
    fields: tuple[AppField, ...] = ()
    # None on an oauth2 app means the integration supplies its own (custom_oauth2).
    authorize_url: HttpsUrl | None = None
    token_url: HttpsUrl | None = None
    default_scopes: tuple[str, ...] = ()
    scope_separator: Literal[" ", ","] = " "
    pkce: bool = False
    extra_authorize_params: FrozenParams = Field(default_factory=dict, validate_default=True)
    token_auth_method: TokenAuthMethod | None = None
    docs_url: HttpsUrl
    notes: str | None = None

    @property
    def is_oauth2(self) -> bool:
        return self.auth_type == "oauth2"

    @property
    def integration_provides_urls(self) -> bool:
        """True when an integration of this app must bring `authorizeUrl` and `tokenUrl`."""
        return self.is_oauth2 and self.authorize_url is None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.is_oauth2:
            if self.fields:
                raise ValueError("an oauth2 app collects no fields")
            if (self.authorize_url is None) != (self.token_url is None):
                raise ValueError("authorizeUrl and tokenUrl come together or not at all")
            if self.token_auth_method is None:
                raise ValueError("an oauth2 app needs a tokenAuthMethod")
        else:
            oauth_only = (
                self.authorize_url,
                self.token_url,
                self.default_scopes,
                self.pkce,
                self.extra_authorize_params,
                self.token_auth_method,
            )
            if any(oauth_only):
                raise ValueError(f"{self.auth_type} apps take no OAuth settings")
            if not any(field.secret for field in self.fields):
                raise ValueError(f"{self.auth_type} apps need at least one secret field")
        names = [field.name for field in self.fields]
        if len(names) != len(set(names)):
            raise ValueError("field names must be unique")
        return self


class FieldOut(Model):
    name: str
    label: str
    secret: bool
    required: bool
    placeholder: str | None = None
    pattern: str | None = None


class AppOut(Model):
    app: str
    name: str
    auth_type: AuthType
    fields: list[FieldOut]


_CATALOGUE = TypeAdapter(tuple[App, ...])


@cache
def _load() -> tuple[tuple[App, ...], Mapping[str, App]]:
    text = files(__package__ or "tether.catalog").joinpath("apps.json").read_text("utf-8")
    apps = _CATALOGUE.validate_json(text)
    by_slug = {app.app: app for app in apps}
    if len(by_slug) != len(apps):
        raise ValueError("apps.json has a duplicate app slug")
    return apps, MappingProxyType(by_slug)


def all_apps() -> list[App]:
    """Every built-in app, in catalogue order."""
    return list(_load()[0])


def get_app(slug: str) -> App | None:
    return _load()[1].get(slug)
