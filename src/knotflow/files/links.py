"""This server's own file URLs: signed, expiring links to `/v1/files/{id}/content` that open without a token.

A run hands file values on as URLs (Coze does the same with pre-signed object-store URLs), so a client must be
able to open what a run returned without its API token. The link carries `expires` (unix seconds) and
`signature`, an HMAC-SHA256 over the file id and the expiry with a server secret; the file's name rides along in
Coze's `x-wf-file_name` parameter and is not signed (it only labels the link; downloads take the stored name).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from knotflow.config import Settings
from knotflow.dsl.files import FILE_NAME_PARAM

EXPIRES_PARAM = "expires"
SIGNATURE_PARAM = "signature"
SECRET_FILE = "file-url-secret"
_CONTENT_PATH = re.compile(r"^/v1/files/(\d{1,30})/content$")


class InvalidLink(Exception):
    """A signed link whose signature does not match, or whose time is up."""


@dataclass(frozen=True, slots=True)
class OwnFileUrl:
    """A URL that points at this server's content endpoint; `expires`/`signature` are None when unsigned."""

    file_id: str
    expires: str | None
    signature: str | None


class FileLinks:
    def __init__(self, base_url: str, secret: bytes, ttl: float) -> None:
        base = urlsplit(base_url.rstrip("/"))
        self._scheme = base.scheme.lower()
        self._netloc = base.netloc.lower()
        self._prefix = base.path
        self._base = base_url.rstrip("/")
        self._secret = secret
        self.ttl = ttl

    @classmethod
    def from_settings(cls, settings: Settings) -> FileLinks:
        return cls(settings.base_url(), load_secret(settings), settings.file_url_ttl)

    def _sign(self, file_id: str, expires: int) -> str:
        digest = hmac.new(self._secret, f"{file_id}:{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def signed_url(self, file_id: str, file_name: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl)
        return self.url(file_id, str(expires), self._sign(file_id, expires), file_name)

    def url(self, file_id: str, expires: str, signature: str, file_name: str) -> str:
        """The link with this expiry and signature, labelled with the file's name."""
        return (f"{self._base}/v1/files/{file_id}/content?{EXPIRES_PARAM}={expires}&{SIGNATURE_PARAM}={signature}"
                f"&{FILE_NAME_PARAM}={quote(file_name, safe='')}")

    def verify(self, file_id: str, expires: str | None, signature: str | None, now: float | None = None) -> None:
        """Raise InvalidLink unless `signature` is this server's for `file_id` and `expires` has not passed."""
        if not expires or not signature or not expires.isascii() or not expires.isdigit():
            raise InvalidLink("the link is not signed")
        if not signature.isascii() or not hmac.compare_digest(self._sign(file_id, int(expires)), signature):
            raise InvalidLink("the link's signature is invalid")
        if int(expires) < (time.time() if now is None else now):
            raise InvalidLink("the link has expired")

    def parse(self, url: str) -> OwnFileUrl | None:
        """The file a URL of this server's content endpoint names, or None for any other URL."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.scheme.lower() != self._scheme or parts.netloc.lower() != self._netloc:
            return None
        path = parts.path[len(self._prefix):] if parts.path.startswith(self._prefix) else ""
        match = _CONTENT_PATH.match(path)
        if match is None:
            return None
        query = parse_qs(parts.query)
        expires = query.get(EXPIRES_PARAM, [None])[-1]
        signature = query.get(SIGNATURE_PARAM, [None])[-1]
        return OwnFileUrl(match.group(1), expires, signature)


def load_secret(settings: Settings) -> bytes:
    """KNOTFLOW_FILE_URL_SECRET, or a random secret made once and kept in the data dir (mode 0600).

    Servers that share a database but not a data dir must set the same KNOTFLOW_FILE_URL_SECRET, or a link
    one of them signed fails on the other.
    """
    if settings.file_url_secret:
        return settings.file_url_secret.encode()
    path = settings.data_dir / SECRET_FILE
    with contextlib.suppress(FileExistsError):
        _create_secret(path)
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds no usable secret: delete it to make a new one, or set "
                           "KNOTFLOW_FILE_URL_SECRET")
    return secret.encode()


def _create_secret(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written to a temporary name and linked into place: a concurrent reader never sees an empty file.
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
        os.link(temp, path)  # fails with FileExistsError when another process was first
    finally:
        temp.unlink(missing_ok=True)
