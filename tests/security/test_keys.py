from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from tether.security.keys import (
    BASE62,
    digest,
    generate_admin_token,
    generate_api_key,
    is_admin_token,
    parse_api_key,
)


class TestFormat:
    def test_secret_production_key(self) -> None:
        key = generate_api_key("secret", "prod")
        assert key.startswith("tether_sk_prod_")
        body = key.removeprefix("tether_sk_prod_")
        assert len(body) == 43 + 6
        assert set(body) <= set(BASE62)

    def test_publishable_development_key(self) -> None:
        key = generate_api_key("publishable", "dev")
        parsed = parse_api_key(key)
        assert parsed is not None
        assert (parsed.type, parsed.env_tag) == ("publishable", "dev")

    def test_keys_are_unique(self) -> None:
        assert len({generate_api_key("secret", "dev") for _ in range(1000)}) == 1000

    def test_digest_is_sha256_hex(self) -> None:
        assert len(digest("x")) == 64

    def test_admin_tokens_have_their_own_prefix(self) -> None:
        token = generate_admin_token()
        assert is_admin_token(token)
        assert parse_api_key(token) is None


class TestChecksum:
    @given(position=st.integers(min_value=0, max_value=48), replacement=st.sampled_from(BASE62))
    def test_one_changed_character_fails_the_checksum(
        self, position: int, replacement: str
    ) -> None:
        key = generate_api_key("secret", "prod")
        index = len("tether_sk_prod_") + position
        if key[index] == replacement:
            return
        changed = key[:index] + replacement + key[index + 1 :]
        assert parse_api_key(changed) is None

    @given(st.text(alphabet=string.printable, max_size=120))
    def test_random_strings_never_parse(self, candidate: str) -> None:
        assert parse_api_key(candidate) is None

    @given(st.text(alphabet=BASE62, min_size=49, max_size=49))
    def test_random_bodies_almost_never_parse(self, body: str) -> None:
        # A random body passes the 32-bit checksum with odds of 1 in 4 billion.
        assert parse_api_key(f"tether_sk_dev_{body}") is None
