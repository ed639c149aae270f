from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any

import pytest
from pydantic import ValidationError

from tether.catalog.apps import App, AppOut, all_apps, get_app

CUSTOM = "custom_oauth2"


def raw_entries() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(
        files("tether.catalog").joinpath("apps.json").read_text("utf-8")
    )
    return entries


def entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "app": "example",
        "name": "Example",
        "authType": "oauth2",
        "fields": [],
        "authorizeUrl": "https://example.com/authorize",
        "tokenUrl": "https://example.com/token",
        "tokenAuthMethod": "client_secret_post",
        "docsUrl": "https://example.com/docs",
    }
    return {**base, **overrides}


class TestCatalogue:
    def test_the_data_file_ships_inside_the_package(self) -> None:
        resource = files("tether.catalog").joinpath("apps.json")
        assert resource.is_file()

    def test_every_entry_validates(self) -> None:
        for raw in raw_entries():
            App.model_validate(raw)
        assert len(all_apps()) == len(raw_entries())

    def test_at_least_ten_real_apps(self) -> None:
        assert len([app for app in all_apps() if app.app != CUSTOM]) >= 10

    def test_slugs_are_unique(self) -> None:
        slugs = [app.app for app in all_apps()]
        assert len(slugs) == len(set(slugs))

    def test_required_apps_are_present(self) -> None:
        for slug in (
            "slack",
            "hubspot",
            "salesforce",
            "google_sheets",
            "github",
            "notion",
            "stripe",
            "airtable",
            "zendesk",
            "mailchimp",
            CUSTOM,
        ):
            assert get_app(slug) is not None, slug

    def test_oauth2_apps_have_https_endpoints(self) -> None:
        oauth = [app for app in all_apps() if app.auth_type == "oauth2" and app.app != CUSTOM]
        assert len(oauth) >= 6
        for app in oauth:
            assert app.authorize_url is not None, app.app
            assert app.authorize_url.scheme == "https", app.app
            assert app.token_url is not None, app.app
            assert app.token_url.scheme == "https", app.app
            assert app.token_auth_method in {"client_secret_post", "client_secret_basic"}
            assert app.fields == ()

    def test_key_and_basic_apps_have_a_secret_field(self) -> None:
        others = [app for app in all_apps() if app.auth_type in {"api_key", "basic"}]
        assert len(others) >= 4
        for app in others:
            assert any(field.secret for field in app.fields), app.app
            assert app.authorize_url is None
            assert app.token_url is None

    def test_custom_oauth2_has_no_urls(self) -> None:
        custom = get_app(CUSTOM)
        assert custom is not None
        assert custom.auth_type == "oauth2"
        assert custom.authorize_url is None
        assert custom.token_url is None
        assert custom.integration_provides_urls
        assert not any(app.integration_provides_urls for app in all_apps() if app.app != CUSTOM)

    def test_slack_matches_its_documentation(self) -> None:
        slack = get_app("slack")
        assert slack is not None
        assert str(slack.authorize_url) == "https://slack.com/oauth/v2/authorize"
        assert str(slack.token_url) == "https://slack.com/api/oauth.v2.access"
        assert slack.scope_separator == ","

    def test_google_asks_for_a_refresh_token(self) -> None:
        google = get_app("google_sheets")
        assert google is not None
        assert dict(google.extra_authorize_params) == {
            "access_type": "offline",
            "prompt": "consent",
        }

    def test_field_patterns_accept_their_own_example(self) -> None:
        samples = {
            ("stripe", "apiKey"): "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            ("mailchimp", "apiKey"): "0123456789abcdef0123456789abcdef-us21",
            ("zendesk", "subdomain"): "acme-support",
            (
                "sendgrid",
                "apiKey",
            ): "SG.ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc",
        }
        for (slug, name), value in samples.items():
            app = get_app(slug)
            assert app is not None
            (field,) = [field for field in app.fields if field.name == name]
            assert field.pattern is not None
            assert re.fullmatch(field.pattern, value), (slug, name)

    def test_unknown_slug_is_none(self) -> None:
        assert get_app("nope") is None


class TestImmutability:
    def test_apps_are_frozen(self) -> None:
        app = all_apps()[0]
        with pytest.raises(ValidationError):
            app.name = "changed"  # type: ignore[misc]

    def test_extra_params_cannot_be_edited_in_place(self) -> None:
        google = get_app("google_sheets")
        assert google is not None
        with pytest.raises(TypeError):
            google.extra_authorize_params["prompt"] = "none"  # type: ignore[index]

    def test_all_apps_hands_out_a_copy(self) -> None:
        all_apps().clear()
        assert len(all_apps()) >= 11


class TestValidation:
    def test_a_well_formed_entry_passes(self) -> None:
        App.model_validate(entry())

    def test_unknown_keys_are_refused(self) -> None:
        with pytest.raises(ValidationError):
            App.model_validate(entry(authorizeURL="https://example.com/a"))

    def test_http_endpoints_are_refused(self) -> None:
        with pytest.raises(ValidationError, match="https"):
            App.model_validate(entry(tokenUrl="http://example.com/token"))

    def test_one_url_without_the_other_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="together"):
            App.model_validate(entry(tokenUrl=None))

    def test_oauth2_needs_a_token_auth_method(self) -> None:
        with pytest.raises(ValidationError, match="tokenAuthMethod"):
            App.model_validate(entry(tokenAuthMethod=None))

    def test_api_key_app_without_a_secret_field_is_refused(self) -> None:
        fields = [{"name": "apiKey", "label": "Key", "secret": False, "required": True}]
        raw = entry(authType="api_key", fields=fields)
        for key in ("authorizeUrl", "tokenUrl", "tokenAuthMethod"):
            raw.pop(key)
        with pytest.raises(ValidationError, match="secret field"):
            App.model_validate(raw)

    def test_api_key_app_with_oauth_settings_is_refused(self) -> None:
        fields = [{"name": "apiKey", "label": "Key", "secret": True, "required": True}]
        with pytest.raises(ValidationError, match="no OAuth settings"):
            App.model_validate(entry(authType="api_key", fields=fields))

    def test_a_broken_pattern_is_refused(self) -> None:
        fields = [
            {"name": "apiKey", "label": "Key", "secret": True, "required": True, "pattern": "(["}
        ]
        raw = {"app": "x", "name": "X", "authType": "api_key", "fields": fields}
        with pytest.raises(ValidationError):
            App.model_validate({**raw, "docsUrl": "https://example.com"})


class TestWireModel:
    def test_app_out_has_exactly_the_documented_keys(self) -> None:
        for app in all_apps():
            body = AppOut.model_validate(app).model_dump(by_alias=True, mode="json")
            assert set(body) == {"app", "name", "authType", "fields"}
            for field in body["fields"]:
                assert set(field) == {
                    "name",
                    "label",
                    "secret",
                    "required",
                    "placeholder",
                    "pattern",
                }

    def test_app_out_never_shows_oauth_internals(self) -> None:
        google = get_app("google_sheets")
        assert google is not None
        text = AppOut.model_validate(google).model_dump_json(by_alias=True)
        assert "oauth2.googleapis.com" not in text
        assert "offline" not in text

    def test_app_out_for_a_basic_app(self) -> None:
        zendesk = get_app("zendesk")
        assert zendesk is not None
        body = AppOut.model_validate(zendesk).model_dump(by_alias=True)
        assert body["authType"] == "basic"
        assert [f["name"] for f in body["fields"]] == ["subdomain", "email", "apiToken"]
        assert [f["secret"] for f in body["fields"]] == [False, False, True]
