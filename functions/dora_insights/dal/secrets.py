"""The secrets the service must read back, encrypted with the stack's KMS key (``SecretsKey``, template/base.yaml).

Which: each space's GitHub webhook secret (``logic.admin``), PagerDuty's webhook signing secret
(``domain.incidents``) and each webhook alert destination's signing secret (``domain.alert_destinations``).
All sign or verify an HMAC, which needs the secret itself, so they cannot be stored hashed as the API keys,
Opsgenie's and GitLab's secrets are. They are encrypted by the application before they reach the table (the
table's own encryption at rest protects against someone with the disks, not against someone who can read
items: a backup, an export, a role with ``dynamodb:GetItem``); reading one back takes ``kms:Decrypt`` on the
key as well.

- **Stored form**: the base64 text of KMS's ``CiphertextBlob``. KMS encrypts directly (the secrets are far
  below its 4 KB limit: no data key, no envelope) and the ciphertext names the key and its version, so a
  yearly rotation of the key changes nothing here.
- **Encryption context** (authenticated, not secret): the space and purpose (and destination) of the secret
  (``signing_context`` of either domain module, ``logic.admin.webhook_secret_context``). KMS decrypts only
  under the context the secret was encrypted with, so a ciphertext copied into another space's item does
  not decrypt there (``InvalidCiphertextException``: :meth:`KmsSecretBox.open` answers None). CloudTrail
  logs the context of every call, which says which space's secret was used.
- **Errors**: a secret over KMS's 4096 bytes is the caller's (400 ``RequestInvalidError``, before any call).
  ``AccessDeniedException`` (the function's role lacks ``kms:Encrypt``/``kms:Decrypt``, the key policy
  refuses), a disabled or deleted key (``DisabledException``, ``KMSInvalidStateException``,
  ``NotFoundException``) and a function without ``SECRETS_KEY_ARN`` are a misconfiguration of the
  deployment: logged as an error naming the code and the key, answered 503 (``ServiceUnavailableError``)
  in the route's error shape. Throttling and KMS's transient failures are a 503 as well (logged as a
  warning): the caller (PagerDuty, the alert queue) tries again.
- **Cache** (:data:`PLAINTEXT_CACHE_SIZE` entries, each used for :data:`PLAINTEXT_CACHE_SECONDS`): a
  decrypted plaintext is kept in the process, keyed by the ciphertext, the encryption context and the
  key, so a busy webhook receiver calls KMS once per secret every few minutes rather than once per
  request (a KMS request costs money and ~10 ms, and counts against the account's shared request quota).
  What it costs: the plaintexts of at most that many secrets stay in the memory of a warm function (which
  had them in memory to use them anyway), and disabling the key or removing the role's ``kms:Decrypt``
  takes up to :data:`PLAINTEXT_CACHE_SECONDS` to stop a warm function from verifying with a secret it has
  already decrypted. Why it is safe: an entry is found only by the exact ciphertext *and* context it was
  decrypted under, so a ciphertext moved to another space (another context) misses the cache and goes to
  KMS, which refuses it; a secret set again has a new ciphertext (KMS never produces the same one twice),
  so the old entry is simply never found again and ages out; nothing is cached on a failure.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping

from dora_insights.dal import aws
from dora_insights.errors import RequestInvalidError, ServiceUnavailableError
from dora_insights.observability import logger

__all__ = ["MAX_PLAINTEXT_BYTES", "PLAINTEXT_CACHE_SECONDS", "PLAINTEXT_CACHE_SIZE", "KmsSecretBox", "clear_cache"]

MAX_PLAINTEXT_BYTES = 4096  # KMS Encrypt's limit
PLAINTEXT_CACHE_SIZE = 256
PLAINTEXT_CACHE_SECONDS = 300.0

# The key cannot be used as configured: the deployment is wrong, not the request.
_MISCONFIGURED = frozenset(
    {
        "AccessDeniedException",
        "DisabledException",
        "KMSInvalidStateException",
        "NotFoundException",
        "InvalidKeyUsageException",
        "UnsupportedOperationException",
    }
)
# The ciphertext is not one this key sealed under this context: moved, altered, or sealed by another key.
_NOT_OURS = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})
_UNAVAILABLE = "secrets cannot be encrypted or decrypted right now"

_CacheKey = tuple[str, str, str]  # key ARN, encryption context (canonical JSON), ciphertext
_cache: OrderedDict[_CacheKey, tuple[float, str]] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every decrypted plaintext (tests; a new runtime)."""
    with _cache_lock:
        _cache.clear()


def _cached(key: _CacheKey) -> str | None:
    with _cache_lock:
        found = _cache.get(key)
        if found is None:
            return None
        expires, plaintext = found
        if expires <= time.monotonic():
            del _cache[key]
            return None
        _cache.move_to_end(key)
        return plaintext


def _remember(key: _CacheKey, plaintext: str) -> None:
    with _cache_lock:
        _cache[key] = (time.monotonic() + PLAINTEXT_CACHE_SECONDS, plaintext)
        _cache.move_to_end(key)
        while len(_cache) > PLAINTEXT_CACHE_SIZE:
            _cache.popitem(last=False)


def _canonical(context: Mapping[str, str]) -> str:
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":"))


class KmsSecretBox:
    """``logic.ports.SecretBox`` over KMS: ``Encrypt``/``Decrypt`` with the key ``key_arn`` (``SECRETS_KEY_ARN``;
    None in a function the template gives no key, where any use is a 503)."""

    def __init__(self, key_arn: str | None) -> None:
        self.key_arn = key_arn

    def _key(self, operation: str, context: Mapping[str, str]) -> str:
        if not self.key_arn:
            logger.error(
                "secrets key not configured: this function has no SECRETS_KEY_ARN (template/base.yaml)",
                extra={"operation": operation, "purpose": context.get("purpose")},
            )
            raise ServiceUnavailableError(_UNAVAILABLE)
        return self.key_arn

    def _failed(
        self, operation: str, error: aws.ClientError | aws.BotoCoreError, context: Mapping[str, str]
    ) -> Exception:
        """The error a KMS failure becomes (logged here: the caller only renders it)."""
        code = aws.call_error_code(error)
        extra = {"operation": operation, "code": code, "key": self.key_arn, "purpose": context.get("purpose")}
        if code in _MISCONFIGURED:
            logger.error(
                f"secrets key unusable ({code}): check that the key is enabled and that this function's role"
                f" allows kms:{operation} on it (template/base.yaml)",
                extra=extra,
            )
        else:
            logger.warning(f"KMS {operation} failed ({code}); the caller may try again", extra=extra)
        return ServiceUnavailableError(_UNAVAILABLE)

    def seal(self, plaintext: str, context: Mapping[str, str]) -> str:
        """``plaintext`` encrypted under ``context``, as base64 text (the form stored in the table)."""
        data = plaintext.encode()
        if not data or len(data) > MAX_PLAINTEXT_BYTES:
            raise RequestInvalidError(f"a secret is 1 to {MAX_PLAINTEXT_BYTES} bytes long", field="secret")
        key_arn = self._key("Encrypt", context)
        try:
            answer = aws.client("kms").encrypt(KeyId=key_arn, Plaintext=data, EncryptionContext=dict(context))
        except (aws.ClientError, aws.BotoCoreError) as error:
            raise self._failed("Encrypt", error, context) from None
        return base64.b64encode(answer["CiphertextBlob"]).decode("ascii")

    def open(self, ciphertext: str, context: Mapping[str, str]) -> str | None:
        """The plaintext of ``ciphertext`` (from the cache when it was decrypted under ``context`` lately);
        None when KMS says it was not sealed by this key under ``context``."""
        key_arn = self._key("Decrypt", context)
        cache_key = (key_arn, _canonical(context), ciphertext)
        cached = _cached(cache_key)
        if cached is not None:
            return cached
        try:
            blob = base64.b64decode(ciphertext.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            logger.warning(
                "a stored secret is not base64: it cannot be decrypted", extra={"purpose": context.get("purpose")}
            )
            return None
        try:
            answer = aws.client("kms").decrypt(CiphertextBlob=blob, KeyId=key_arn, EncryptionContext=dict(context))
        except aws.ClientError as error:
            if aws.error_code(error) in _NOT_OURS:
                logger.warning(
                    "a stored secret does not decrypt under its item's encryption context (moved or altered)",
                    extra={"code": aws.error_code(error), "purpose": context.get("purpose")},
                )
                return None
            raise self._failed("Decrypt", error, context) from None
        except aws.BotoCoreError as error:
            raise self._failed("Decrypt", error, context) from None
        plaintext = bytes(answer["Plaintext"]).decode()
        _remember(cache_key, plaintext)
        return plaintext
