"""zmqex.keys: key files in pyzmq's format, the keyring a node loads, and signatures."""

from __future__ import annotations

import stat

import pytest
import zmq.auth

from zmqex import keys
from zmqex.errors import KeyFileError
from zmqex.keys import Keyring


def test_keygen_writes_a_pyzmq_certificate_pair_with_a_signing_key(tmp_path):
    public_path, secret_path = keys.write(tmp_path, "alice")
    public, secret = zmq.auth.load_certificate(secret_path)
    assert zmq.auth.load_certificate(public_path) == (public, None) and secret is not None
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    loaded = keys.load_secret(secret_path)
    assert loaded.curve_public == public and loaded.curve_secret == secret
    assert keys.load_public(public_path) == loaded.public
    # The CURVE pair is the signing key's, converted: a real CurveZMQ key pair.
    assert zmq.curve_public(loaded.curve_secret) == loaded.curve_public


def test_a_public_key_file_whose_two_keys_do_not_belong_together_is_refused(tmp_path):
    a, _ = keys.write(tmp_path, "a")
    b, _ = keys.write(tmp_path, "b")
    sign_of_b = [line for line in b.read_text().splitlines() if "sign-key" in line][0]
    mixed = "\n".join(sign_of_b if "sign-key" in line else line for line in a.read_text().splitlines())
    (tmp_path / "mixed.key").write_text(mixed)
    with pytest.raises(KeyFileError, match="do not belong together"):
        keys.load_public(tmp_path / "mixed.key")
    (tmp_path / "short.key").write_text('curve\n    public-key = "abc"\n')
    with pytest.raises(KeyFileError):
        keys.load_public(tmp_path / "short.key")


def test_a_keyring_binds_each_key_to_one_name(tmp_path):
    keys.make_network(tmp_path, ["a", "b"], traders=["alice"], operators=["ops"])
    ring = Keyring.load(tmp_path / "a", "a")
    assert set(ring.members) == {"a", "b"} and set(ring.traders) == {"alice"} and set(ring.operators) == {"ops"}
    assert sorted(ring.principals.values()) == ["m:a", "m:b", "o:ops", "t:alice"]
    assert ring.principals[ring.members["b"].curve] == "m:b" and ring.principals[ring.traders["alice"].curve] == "t:alice"
    # One key may not stand for two parties.
    (tmp_path / "a" / "traders" / "b.key").write_bytes((tmp_path / "a" / "members" / "b.key").read_bytes())
    with pytest.raises(KeyFileError, match="both"):
        Keyring.load(tmp_path / "a", "a")


def test_signatures_verify_only_for_their_member_and_their_bytes(tmp_path):
    keys.make_network(tmp_path, ["a", "b"])
    ring = Keyring.load(tmp_path / "a", "a")
    sig = ring.own.signer()(b"event")
    assert ring.verify("a", b"event", sig)
    assert not ring.verify("b", b"event", sig)  # another member's name
    assert not ring.verify("a", b"event!", sig)  # other bytes
    assert not ring.verify("mallory", b"event", sig)  # no member
    assert not ring.verify("a", b"event", b"\0" * 64)


def test_keygen_refuses_to_overwrite_a_secret(tmp_path, capsys):
    assert keys.keygen_main([str(tmp_path), "a"]) == 0
    with pytest.raises(SystemExit):
        keys.keygen_main([str(tmp_path), "a"])
    assert "refusing to overwrite" in capsys.readouterr().err
