"""WeChat Pay APIv3's signatures and resources (shared/payments/wechatpay_crypto.py): known vectors,
agreement with OpenSSL, and the hostile cases (bad signature, stale timestamp, unknown serial,
certificates out of validity, tampered ciphertext)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from shared.kernel.errors import BadSignature, MalformedRequest
from shared.payments import wechatpay_crypto as crypto
from tests.fakes.payments import keys

# A request message signed by the OpenSSL command line (an implementation other than ours):
#   openssl dgst -sha256 -sign key.pem msg.txt | base64
# with a throwaway key whose public half is this. The private half was not kept.
OPENSSL_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAncIAwWj7wMlDltH8fizd
QmYO0BSu3WbgLaZnRRyR3kKkKb5YsX9a0zIznsI2IlHg5HZKK+sIpZIenPtuAO7Q
ZQEIyw2UvJrtU7/wyoz+wyn8UvEbr6C9DGoTZOj6rFxSCc7MNnABd8jrEDpE52HL
/5Yfv4VgZymVyZUz5sZzPbW5YuZZ4lh0irX+UeLTS/kxE19BfHAHWU/ChFGNpWOL
0QVbXDChhpiJvzw7/+ZiGlLq7+uUV9vcdzR/KgH2OqXVxtzrw7QNgQRbI/wY4ySF
gekS3iKQ6iI7NtREYEbbzUQFvlX5dDMtSPkS0BdwazmuOVkKUhCO0kc6TiXTyiGD
dQIDAQAB
-----END PUBLIC KEY-----
"""
OPENSSL_BODY = b'{"appid":"wxd678efh567hg6787","mchid":"1230000109"}'
OPENSSL_SIGNATURE = (
    "S8VR/BJlnOOP/yCwODhj+FDmdUxgn2iq85TQh/scWbeCtWRE4ZHRN657DIsExX6qiG6iqjjTCQSXh0ylIVYQF7OS6wBSEw8usHVijNzBHGIX"
    "c6bj7pdTb6lWRQ1QleJ/IspBp9tD2tU1qF7p5A0WGER/KzUjjZGYE3GVCgjrm3kWXaGCJF2oi/B2cWE7br4dliyUO1SWiqsYqsLdJNV3JYj/"
    "76oAjkEeWDYxu7U9rVxcT/8vME3bTVaxo/DSI343UF+nl73l0qnxIyZk/2wBOco0ZqAqrXy+opO7D3LF2tFiJfWg3hE/1XVyArR6n/nhGJ59"
    "kVUJdskUE3m12FcFVA=="
)
# AEAD_AES_256_GCM of a transaction resource with a fixed APIv3 key, nonce and associated data.
APIV3_KEY = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
GCM_RESOURCE = {
    "algorithm": "AEAD_AES_256_GCM",
    "nonce": "fdasflkja484",
    "associated_data": "transaction",
    "ciphertext": (
        "uQVZmLADoQCykdiSomLNXG9MwrHJdsaJYgrbrRravqBm/QCfKJnLjvdOjip09YG21bZLMzFHVGCiyirHhGjxbb5I4jDC8l+8ZMmMk2fPvlfs"
        "aYuX+1M8GN7ulyMcS4vPOHGnBpiPSJuXNgiRolSUXguz6OZQ2jvd1G6VHcrcNV6qOGlv6OK8wbMF19yxY5E3wUm/PdweQ58rSCnnXE+d3zGB"
        "b3kB4SviWyqDvjwCdVFcZE96xFx1bsnMK1PhC/Lne8bv7bOhjx+fRGphjIPJ/1kHuIUrd2ALBV3vbSn4E8wVlQyWad/lbiv7Z95QX6BWt0LI"
        "smWs0NDC5B0mWGr/V+roMvS8Ifaf6mlQpskukzOywg=="
    ),
}
NOW = 1_767_225_600


def test_the_request_message_is_five_lines_each_ended_by_a_newline():
    message = crypto.request_message("post", "/v3/pay/transactions/jsapi", "1554208460", "593BEC0C", b"{}")
    assert message == b"POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C\n{}\n"
    assert crypto.request_message("GET", "/v3/certificates", "1", "n", b"") == b"GET\n/v3/certificates\n1\nn\n\n"
    assert crypto.signed_message("1", "n", b"body") == b"1\nn\nbody\n"


def test_a_signature_made_by_openssl_verifies_and_nothing_else_does():
    public_key = crypto.load_public_key(OPENSSL_PUBLIC_KEY)
    message = crypto.request_message(
        "POST", "/v3/pay/transactions/jsapi", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", OPENSSL_BODY
    )
    assert crypto.verify(public_key, message, OPENSSL_SIGNATURE)
    assert not crypto.verify(public_key, message.replace(b"1230000109", b"1230000108"), OPENSSL_SIGNATURE)
    flipped = base64.b64encode(
        bytes([base64.b64decode(OPENSSL_SIGNATURE)[0] ^ 1]) + base64.b64decode(OPENSSL_SIGNATURE)[1:]
    )
    assert not crypto.verify(public_key, message, flipped.decode())
    for garbage in ("", "not base64!", "é", OPENSSL_SIGNATURE[:-4]):
        assert not crypto.verify(public_key, message, garbage)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_our_signature_verifies_with_openssl(tmp_path: Path):
    key = keys().merchant_key
    message = crypto.request_message("POST", "/v3/refund/domestic/refunds", "1700000000", "N0NCE", b'{"a":1}')
    (tmp_path / "pub.pem").write_text(crypto.public_pem(key.public_key()))
    (tmp_path / "msg").write_bytes(message)
    (tmp_path / "sig").write_bytes(base64.b64decode(crypto.sign(key, message)))
    argv = ["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig", "msg"]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and "Verified OK" in done.stdout


def test_the_authorization_header_carries_what_wechat_pay_checks_and_parses_back():
    key = keys().merchant_key
    header = crypto.authorization("1900000109", "SERIAL1", key, "POST", "/v3/pay/transactions/jsapi", b"{}", NOW, "ABC")
    assert header.startswith('WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="ABC",signature="')
    parsed = crypto.parse_authorization(header)
    assert parsed["timestamp"] == str(NOW) and parsed["serial_no"] == "SERIAL1"
    message = crypto.request_message("POST", "/v3/pay/transactions/jsapi", str(NOW), "ABC", b"{}")
    assert crypto.verify(key.public_key(), message, parsed["signature"])
    with pytest.raises(BadSignature):
        crypto.parse_authorization(header.replace("WECHATPAY2-SHA256-RSA2048", "Bearer"))
    with pytest.raises(BadSignature, match="serial_no"):
        crypto.parse_authorization('WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",signature="s",timestamp="1"')


def test_pay_sign_is_the_merchant_key_over_the_four_lines_of_wx_request_payment():
    key = keys().merchant_key
    sign = crypto.pay_sign(key, "wxd678efh567hg6787", "1414561699", "5K8264ILTKCH16CQ", "prepay_id=wx2017")
    expected = b"wxd678efh567hg6787\n1414561699\n5K8264ILTKCH16CQ\nprepay_id=wx2017\n"
    assert crypto.verify(key.public_key(), expected, sign)


# -- responses and callbacks -------------------------------------------------------------------
def platform_keys(*extra: crypto.PlatformKey) -> crypto.PlatformKeys:
    k = keys()
    own = crypto.PlatformKey.from_public_key(k.public_key_id, crypto.public_pem(k.platform_key.public_key()))
    return crypto.PlatformKeys.of([own, *extra])


def signed(body: bytes, *, timestamp: int = NOW, serial: str | None = None, key: rsa.RSAPrivateKey | None = None):
    k = keys()
    signature = crypto.sign(key or k.platform_key, crypto.signed_message(str(timestamp), "NONCE42", body))
    return {
        "Wechatpay-Timestamp": str(timestamp),
        "Wechatpay-Nonce": "NONCE42",
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": serial or k.public_key_id,
    }


def test_a_signed_answer_verifies_within_five_minutes_either_way():
    body = b'{"prepay_id":"wx1"}'
    for skew in (-300, 0, 300):
        assert platform_keys().verify(signed(body, timestamp=NOW + skew), body, NOW) == keys().public_key_id
    lowered = {name.lower(): value for name, value in signed(body).items()}
    assert platform_keys().verify(lowered, body, NOW) == keys().public_key_id


@pytest.mark.parametrize("skew", [-301, 301, -360, 86400])
def test_a_timestamp_more_than_five_minutes_off_is_refused(skew):
    body = b"{}"
    with pytest.raises(BadSignature, match="stale"):
        platform_keys().verify(signed(body, timestamp=NOW + skew), body, NOW)


def test_a_body_changed_after_signing_or_a_key_we_do_not_hold_is_refused():
    body = b'{"prepay_id":"wx1"}'
    with pytest.raises(BadSignature, match="does not match"):
        platform_keys().verify(signed(body), b'{"prepay_id":"wx2"}', NOW)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(BadSignature, match="does not match"):
        platform_keys().verify(signed(body, key=other), body, NOW)
    with pytest.raises(BadSignature, match="do not hold"):
        platform_keys().verify(signed(body, serial="PUB_KEY_ID_0000000000000000000000000000"), body, NOW)


@pytest.mark.parametrize(
    "header, value",
    [
        ("Wechatpay-Timestamp", "1" * 5000),
        ("Wechatpay-Timestamp", "١٧٦٧٢٢٥٦٠٠"),  # Arabic-Indic digits: int() would take them
        ("Wechatpay-Nonce", ""),
        ("Wechatpay-Serial", "x y"),
        ("Wechatpay-Signature", "é"),
    ],
)
def test_malformed_headers_are_a_bad_signature_not_an_error(header, value):
    body = b"{}"
    headers = {**signed(body), header: value}
    with pytest.raises(BadSignature):
        platform_keys().verify(headers, body, NOW)
    with pytest.raises(BadSignature):
        platform_keys().verify({}, body, NOW)


def certificate(key: rsa.RSAPrivateKey, not_before: dt.datetime, not_after: dt.datetime) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x5157F09EFDC096DE15EBE81A47057A7232F5C3A)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return built.public_bytes(Encoding.PEM).decode()


def test_certificate_mode_names_the_certificate_by_its_hex_serial_and_holds_it_to_its_validity():
    k = keys()
    when = dt.datetime.fromtimestamp(NOW, dt.UTC)
    current = certificate(k.platform_key, when - dt.timedelta(days=1), when + dt.timedelta(days=1))
    bundle = current + certificate(k.merchant_key, when + dt.timedelta(days=2), when + dt.timedelta(days=9))
    held = [crypto.PlatformKey.from_certificate(pem) for pem in crypto.certificates_in(bundle)]
    assert len(held) == 2 and held[0].serial == "5157F09EFDC096DE15EBE81A47057A7232F5C3A"
    ring = crypto.PlatformKeys.of(held[:1])
    body = b'{"ok":true}'
    # the serial may come in lower case; WeChat Pay writes it upper
    assert ring.verify(signed(body, serial=held[0].serial.lower()), body, NOW) == held[0].serial
    expired = crypto.PlatformKeys.of([crypto.PlatformKey.from_certificate(current)])
    with pytest.raises(BadSignature, match="validity"):
        expired.verify(signed(body, timestamp=NOW + 3 * 86400, serial=held[0].serial), body, NOW + 3 * 86400)


def test_public_key_ids_are_what_wechat_pay_issues():
    with pytest.raises(ValueError, match="PUB_KEY_ID_"):
        crypto.PlatformKey.from_public_key("5157F09E", crypto.public_pem(keys().platform_key.public_key()))


# -- resources -----------------------------------------------------------------------------------
def test_the_known_resource_decrypts():
    plaintext = json.loads(crypto.decrypt_resource(APIV3_KEY, GCM_RESOURCE))
    assert plaintext["transaction_id"] == "4200000848202101120290526543"
    assert plaintext["amount"] == {"total": 16800, "currency": "CNY"}


def test_encrypting_then_decrypting_is_the_identity():
    sealed = crypto.encrypt_resource(APIV3_KEY, "支付成功".encode(), "transaction")
    assert crypto.decrypt_resource(APIV3_KEY, sealed).decode() == "支付成功"


@pytest.mark.parametrize(
    "change",
    [
        {"ciphertext": GCM_RESOURCE["ciphertext"].replace("uQVZ", "uQVa", 1)},  # one bit of the ciphertext
        {"ciphertext": GCM_RESOURCE["ciphertext"][:-8] + "AAAAAA=="},  # the tag
        {"associated_data": "refund"},
        {"nonce": "fdasflkja485"},
        {"ciphertext": "not base64!"},
    ],
)
def test_a_tampered_resource_does_not_open(change):
    with pytest.raises(crypto.ResourceUndecryptable):
        crypto.decrypt_resource(APIV3_KEY, {**GCM_RESOURCE, **change})


def test_another_merchants_apiv3_key_does_not_open_it_and_other_shapes_are_malformed():
    with pytest.raises(crypto.ResourceUndecryptable):
        crypto.decrypt_resource("V" * 32, GCM_RESOURCE)
    with pytest.raises(MalformedRequest):
        crypto.decrypt_resource(APIV3_KEY, {**GCM_RESOURCE, "algorithm": "AES_256_CBC"})
    with pytest.raises(MalformedRequest):
        crypto.decrypt_resource(APIV3_KEY, {**GCM_RESOURCE, "nonce": 7})
    with pytest.raises(ValueError, match="32 bytes"):
        crypto.apiv3_key_bytes("short")


def test_a_sensitive_field_encrypted_for_wechat_pay_opens_with_openssls_oaep_sha1(tmp_path: Path):
    # Given a buyer's card number encrypted with WeChat Pay's public key (RSAES-OAEP, SHA-1)
    platform = keys().platform_key
    sealed = crypto.encrypt_sensitive(platform.public_key(), "6222020200112233445")
    # Then it is randomised (the same text never twice the same) and our other side opens it
    assert sealed != crypto.encrypt_sensitive(platform.public_key(), "6222020200112233445")
    assert crypto.decrypt_sensitive(platform, sealed) == "6222020200112233445"
    # And so does an implementation other than ours, with WeChat Pay's parameters
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    (tmp_path / "key.pem").write_text(crypto.private_pem(platform))
    (tmp_path / "sealed").write_bytes(base64.b64decode(sealed))
    argv = ["openssl", "pkeyutl", "-decrypt", "-inkey", "key.pem", "-in", "sealed"]
    argv += ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1", "-pkeyopt", "rsa_mgf1_md:sha1"]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"6222020200112233445"
    # But another key, or a tampered or non-base64 text, does not open
    for hostile in (
        crypto.encrypt_sensitive(keys().merchant_key.public_key(), "x"),
        sealed[:-4] + "AAA=",
        "not base64!",
    ):
        with pytest.raises(MalformedRequest):
            crypto.decrypt_sensitive(platform, hostile)


def test_sensitive_fields_are_encrypted_with_the_public_key_else_the_newest_valid_certificate():
    the_keys = keys()
    public_pem = crypto.public_pem(the_keys.platform_key.public_key())
    public = crypto.PlatformKey.from_public_key(the_keys.public_key_id, public_pem)
    certificate = crypto.PlatformKey.from_certificate(the_keys.certificate_pem())
    assert certificate.not_before_s is not None and certificate.not_after_s is not None
    now = certificate.not_before_s + 60
    # Public-key mode (alone or beside certificates while a merchant moves over): the public key
    assert crypto.PlatformKeys.of([certificate, public]).for_encryption(now) is public
    # Certificate mode: the valid certificate that expires last; none valid is refused
    older = crypto.PlatformKey("0AB1", certificate.public_key, certificate.not_before_s, certificate.not_after_s - 1)
    assert crypto.PlatformKeys.of([older, certificate]).for_encryption(now) is certificate
    with pytest.raises(ValueError, match="no WeChat Pay key is valid"):
        crypto.PlatformKeys.of([certificate]).for_encryption(certificate.not_after_s + 1)
