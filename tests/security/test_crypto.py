from __future__ import annotations

import base64

import pytest

from tether.security.crypto import (
    ConfigurationError,
    Keyring,
    UndecryptableSecret,
    generate_key_spec,
)


class TestKeyring:
    def test_round_trip(self) -> None:
        keyring = Keyring([generate_key_spec()])
        sealed = keyring.encrypt(b"s3cret", "users:usr_1")
        assert b"s3cret" not in sealed.encode()
        assert keyring.decrypt(sealed, "users:usr_1") == b"s3cret"

    def test_ciphertext_names_its_key(self) -> None:
        spec = generate_key_spec()
        keyring = Keyring([spec])
        assert keyring.key_id_of(keyring.encrypt(b"x", "a")) == spec.split(":")[0]

    def test_another_rows_identity_does_not_decrypt(self) -> None:
        keyring = Keyring([generate_key_spec()])
        sealed = keyring.encrypt(b"s3cret", "credentials:cred_a")
        with pytest.raises(UndecryptableSecret):
            keyring.decrypt(sealed, "credentials:cred_b")

    def test_tampered_ciphertext_does_not_decrypt(self) -> None:
        keyring = Keyring([generate_key_spec()])
        kid, _, blob = keyring.encrypt(b"s3cret", "a").partition(":")
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 1
        with pytest.raises(UndecryptableSecret):
            keyring.decrypt(f"{kid}:{base64.b64encode(bytes(raw)).decode()}", "a")

    def test_first_key_encrypts_and_every_key_decrypts(self) -> None:
        old, new = generate_key_spec(), generate_key_spec()
        sealed_by_old = Keyring([old]).encrypt(b"x", "a")
        rotated = Keyring([new, old])
        assert rotated.decrypt(sealed_by_old, "a") == b"x"
        assert rotated.needs_rotation(sealed_by_old)
        assert not rotated.needs_rotation(rotated.encrypt(b"x", "a"))

    def test_a_missing_key_is_a_clean_error(self) -> None:
        sealed = Keyring([generate_key_spec()]).encrypt(b"x", "a")
        with pytest.raises(UndecryptableSecret):
            Keyring([generate_key_spec()]).decrypt(sealed, "a")

    @pytest.mark.parametrize(
        "specs",
        [
            [],
            ["no-colon"],
            ["k1:not base64!"],
            ["k1:" + base64.b64encode(b"short").decode()],
            ["bad kid!:" + base64.b64encode(bytes(32)).decode()],
            ["k1:" + base64.b64encode(bytes(32)).decode()] * 2,
        ],
    )
    def test_bad_configuration_is_refused_with_a_message(self, specs: list[str]) -> None:
        with pytest.raises(ConfigurationError, match=r"\w"):
            Keyring(specs)
