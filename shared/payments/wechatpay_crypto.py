"""WeChat Pay APIv3's signatures and its encrypted resources, with `cryptography` (docs/payments.md).

- Requests are signed with the merchant's RSA key (SHA256withRSA, PKCS#1 v1.5) over
  `METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n` and carried in `Authorization: WECHATPAY2-SHA256-RSA2048 ...`.
- Responses and callbacks are signed by WeChat Pay over `timestamp\\nnonce\\nbody\\n`, with the key
  `Wechatpay-Serial` names: a WeChat Pay public key (`PUB_KEY_ID_...`, public-key mode) or a platform
  certificate (its serial in hex, certificate mode). `PlatformKeys` holds the keys we were given and
  refuses a serial it does not hold, a timestamp more than five minutes off, or a certificate out of
  its validity; nothing is fetched (no `/v3/certificates` download at cold start).
- Callback resources are AEAD_AES_256_GCM with the APIv3 key, the resource's nonce and associated data.
- `wx.requestPayment`'s `paySign`: the merchant key over `appId\\ntimeStamp\\nnonceStr\\npackage\\n`.
- Sensitive request fields (a buyer's bank card number and name) are encrypted with WeChat Pay's key,
  RSAES-OAEP with SHA-1 (敏感信息加密), and the request's `Wechatpay-Serial` names the key used.

Only the payments code loads this module, when a WeChat Pay request is handled: `cryptography` stays out
of the cold import of app.py.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.kernel.errors import BadSignature, MalformedRequest
from shared.payments.model import NONCE, SERIAL, SIGNATURE, TIMESTAMP

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
ALGORITHM = "AEAD_AES_256_GCM"
TOLERANCE_S = 300  # WeChat Pay's own window for a request's timestamp; we hold its messages to the same
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[0-9A-Za-z]{1,64}")
_SERIAL = re.compile(r"[0-9A-Za-z_]{1,64}")
_AUTH_PARAM = re.compile(r'([a-z_]+)="([^"]*)"')
_NONCE_ALPHABET = string.ascii_uppercase + string.digits


class ResourceUndecryptable(BadSignature):
    """The resource's ciphertext does not open with our APIv3 key (tampered, or another merchant's)."""

    code = "RESOURCE_UNDECRYPTABLE"


def nonce_str(length: int = 32) -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


# -- keys ------------------------------------------------------------------------------------------
def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant key must be an RSA private key (apiclient_key.pem)")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("a WeChat Pay public key must be RSA (pub_key.pem)")
    return key


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def certificate_serial(certificate: x509.Certificate) -> str:
    """The serial as WeChat Pay writes it in `Wechatpay-Serial`: upper-case hex."""
    return f"{certificate.serial_number:X}"


@dataclass(frozen=True)
class PlatformKey:
    """A key WeChat Pay signs with: `serial` as `Wechatpay-Serial` names it; a certificate's key only
    inside the certificate's validity (`not_before`, `not_after`: epoch seconds)."""

    serial: str
    public_key: rsa.RSAPublicKey
    not_before_s: float | None = None
    not_after_s: float | None = None

    @classmethod
    def from_public_key(cls, key_id: str, pem: str) -> PlatformKey:
        if not key_id.startswith("PUB_KEY_ID_"):
            raise ValueError("a WeChat Pay public key id starts with PUB_KEY_ID_")
        return cls(key_id, load_public_key(pem))

    @classmethod
    def from_certificate(cls, pem: str) -> PlatformKey:
        certificate = x509.load_pem_x509_certificate(pem.encode())
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("a WeChat Pay platform certificate carries an RSA key")
        return cls(
            certificate_serial(certificate),
            key,
            certificate.not_valid_before_utc.timestamp(),
            certificate.not_valid_after_utc.timestamp(),
        )

    def valid_at(self, now_s: float) -> bool:
        if self.not_before_s is not None and now_s < self.not_before_s:
            return False
        return self.not_after_s is None or now_s <= self.not_after_s


def certificates_in(pem_bundle: str) -> list[str]:
    """Each certificate of a PEM bundle (a platform certificate and its successor during rotation)."""
    end = "-----END CERTIFICATE-----"
    return [part.strip() + "\n" + end + "\n" for part in pem_bundle.split(end) if "BEGIN CERTIFICATE" in part]


@dataclass(frozen=True)
class PlatformKeys:
    """The WeChat Pay keys this merchant trusts, by serial. Given, never downloaded."""

    keys: Mapping[str, PlatformKey] = field(default_factory=dict)
    tolerance_s: int = TOLERANCE_S

    @classmethod
    def of(cls, keys: Iterable[PlatformKey], tolerance_s: int = TOLERANCE_S) -> PlatformKeys:
        return cls({key.serial.upper(): key for key in keys}, tolerance_s)

    def for_encryption(self, now_s: float) -> PlatformKey:
        """The key to encrypt a sensitive field with: WeChat Pay's public key where we hold it (public-key
        mode), else the platform certificate valid now that expires last (the newer one during rotation).
        ValueError when none is valid now."""
        keys = [key for key in self.keys.values() if key.valid_at(now_s)]
        public = [key for key in keys if key.not_after_s is None]
        if public:
            return public[0]
        if not keys:
            raise ValueError("no WeChat Pay key is valid now to encrypt with")
        return max(keys, key=lambda key: key.not_after_s or 0.0)

    def verify(self, headers: Mapping[str, str], body: bytes, now_s: float) -> str:
        """Check a response's or a callback's signature; returns the serial that signed it. BadSignature
        when a header is missing or malformed, the serial is not one we hold (or its certificate is not
        valid now), the timestamp is more than `tolerance_s` from now, or the signature does not verify."""
        lowered = {name.lower(): value for name, value in headers.items()}
        timestamp, nonce, signature, serial = (lowered.get(name, "") for name in (TIMESTAMP, NONCE, SIGNATURE, SERIAL))
        if not (_UNIX_SECONDS.fullmatch(timestamp) and _NONCE.fullmatch(nonce) and _SERIAL.fullmatch(serial)):
            raise BadSignature("Wechatpay-Timestamp, -Nonce and -Serial are missing or malformed")
        key = self.keys.get(serial.upper())
        if key is None:
            raise BadSignature("Wechatpay-Serial names a key we do not hold", serial=serial)
        if not key.valid_at(now_s):
            raise BadSignature("the platform certificate is outside its validity", serial=serial)
        if abs(now_s - int(timestamp)) > self.tolerance_s:
            raise BadSignature("stale Wechatpay-Timestamp", tolerance_s=self.tolerance_s)
        if not verify(key.public_key, signed_message(timestamp, nonce, body), signature):
            raise BadSignature("Wechatpay-Signature does not match the body")
        return key.serial


# -- signing ---------------------------------------------------------------------------------------
def sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64 of SHA256withRSA (PKCS#1 v1.5), as every WeChat Pay v3 signature is."""
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(public_key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
        public_key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return True


def lines(*parts: str | bytes) -> bytes:
    """Each part followed by a newline, the last one included: the shape of every signed message."""
    return b"".join((part.encode() if isinstance(part, str) else part) + b"\n" for part in parts)


def request_message(method: str, url_path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """`url_path`: the path with its query string, no scheme or host (`/v3/pay/transactions/jsapi`)."""
    return lines(method.upper(), url_path, timestamp, nonce, body)


def signed_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What WeChat Pay signs in a response or a callback: the body exactly as it travelled."""
    return lines(timestamp, nonce, body)


def authorization(
    mchid: str,
    serial_no: str,
    private_key: rsa.RSAPrivateKey,
    method: str,
    url_path: str,
    body: bytes,
    timestamp: int,
    nonce: str,
) -> str:
    signature = sign(private_key, request_message(method, url_path, str(timestamp), nonce, body))
    return (
        f'{SCHEMA} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


def parse_authorization(header: str) -> dict[str, str]:
    """The parameters of an `Authorization` header of this schema (the local WeChat Pay checks ours)."""
    schema, _, params = header.partition(" ")
    if schema != SCHEMA:
        raise BadSignature(f"Authorization must use the {SCHEMA} schema")
    found = dict(_AUTH_PARAM.findall(params))
    missing = {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} - set(found)
    if missing:
        raise BadSignature("Authorization lacks " + ", ".join(sorted(missing)))
    return found


def pay_sign(private_key: rsa.RSAPrivateKey, appid: str, timestamp: str, nonce: str, package: str) -> str:
    """`wx.requestPayment`'s `paySign` (signType RSA)."""
    return sign(private_key, lines(appid, timestamp, nonce, package))


# -- sensitive fields ------------------------------------------------------------------------------
def _oaep() -> padding.OAEP:
    # SHA-1 because WeChat Pay's scheme is RSA/ECB/OAEPWithSHA-1AndMGF1Padding (OAEP's SHA-1 is not a signature).
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def encrypt_sensitive(public_key: rsa.RSAPublicKey, plaintext: str) -> str:
    """Base64 of RSAES-OAEP (SHA-1, MGF1 with SHA-1) of the UTF-8 text: how APIv3 carries a card number or
    a name to WeChat Pay. Randomised: the same text never gives the same ciphertext twice."""
    return base64.b64encode(public_key.encrypt(plaintext.encode(), _oaep())).decode()


def decrypt_sensitive(private_key: rsa.RSAPrivateKey, ciphertext: str) -> str:
    """The other side of encrypt_sensitive (the local WeChat Pay's). MalformedRequest if it does not open."""
    try:
        return private_key.decrypt(base64.b64decode(ciphertext.encode("ascii"), validate=True), _oaep()).decode()
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise MalformedRequest("a sensitive field does not decrypt with WeChat Pay's key") from exc


# -- encrypted resources ---------------------------------------------------------------------------
def apiv3_key_bytes(apiv3_key: str) -> bytes:
    raw = apiv3_key.encode()
    if len(raw) != 32:
        raise ValueError("the APIv3 key is 32 bytes (set in the merchant platform, API security)")
    return raw


def decrypt_resource(apiv3_key: str, resource: Mapping[str, object]) -> bytes:
    """The plaintext of a callback's `resource`. MalformedRequest for a resource of another shape or
    algorithm; ResourceUndecryptable (a BadSignature) when the GCM tag does not verify."""
    if resource.get("algorithm") != ALGORITHM:
        raise MalformedRequest(f"resource.algorithm must be {ALGORITHM}")
    nonce, ciphertext, associated = (resource.get(k, "") for k in ("nonce", "ciphertext", "associated_data"))
    if not (isinstance(nonce, str) and nonce and isinstance(ciphertext, str) and isinstance(associated, str)):
        raise MalformedRequest("resource needs nonce, ciphertext and associated_data strings")
    try:
        sealed = base64.b64decode(ciphertext.encode("ascii"), validate=True)
        return AESGCM(apiv3_key_bytes(apiv3_key)).decrypt(nonce.encode(), sealed, associated.encode())
    except (InvalidTag, binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ResourceUndecryptable("resource does not decrypt with the APIv3 key") from exc


def encrypt_resource(
    apiv3_key: str, plaintext: bytes, associated_data: str, nonce: str | None = None
) -> dict[str, str]:
    """A resource as WeChat Pay sends it (for the local WeChat Pay and tests)."""
    nonce = nonce or nonce_str(12)
    sealed = AESGCM(apiv3_key_bytes(apiv3_key)).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return {
        "algorithm": ALGORITHM,
        "ciphertext": base64.b64encode(sealed).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }
