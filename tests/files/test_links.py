"""FileLinks: signing, verifying, recognising this server's own content URLs, and the secret's keeping."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from knotflow.config import Settings
from knotflow.files.links import SECRET_FILE, FileLinks, InvalidLink, OwnFileUrl, load_secret


def test_secret_is_made_once_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = load_secret(settings)
    path = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(settings) == first and len(first) == 64
    assert [p.name for p in path.parent.iterdir()] == [SECRET_FILE]
    assert load_secret(Settings(data_dir=tmp_path, file_url_secret="configured")) == b"configured"


def test_links_of_another_secret_do_not_verify(tmp_path: Path) -> None:
    mine = FileLinks("http://files.test", b"a" * 32, ttl=60)
    theirs = FileLinks("http://files.test", b"b" * 32, ttl=60)
    own = mine.parse(theirs.signed_url("5", "x.txt"))
    assert own is not None
    with pytest.raises(InvalidLink, match="signature"):
        mine.verify(own.file_id, own.expires, own.signature)
    own = mine.parse(mine.signed_url("5", "x.txt", now=1000.0))
    assert own is not None
    mine.verify(own.file_id, own.expires, own.signature, now=1060.0)
    with pytest.raises(InvalidLink, match="expired"):
        mine.verify(own.file_id, own.expires, own.signature, now=1061.0)


def test_parse_recognises_only_this_servers_content_urls() -> None:
    links = FileLinks("https://Example.com/knotflow/", b"k" * 32, ttl=60)
    assert links.signed_url("9", "a b/c.txt").startswith(
        "https://Example.com/knotflow/v1/files/9/content?expires=")
    assert links.signed_url("9", "a b/c.txt").endswith("&x-wf-file_name=a%20b%2Fc.txt")
    assert links.parse("https://example.com/knotflow/v1/files/9/content") == OwnFileUrl("9", None, None)
    assert links.parse("https://example.com/knotflow/v1/files/9/content?expires=1&signature=s") == OwnFileUrl(
        "9", "1", "s")
    for other in ("http://example.com/knotflow/v1/files/9/content", "https://example.com/v1/files/9/content",
                  "https://example.com:8443/knotflow/v1/files/9/content",
                  "https://example.com/knotflow/v1/files/abc/content", "https://example.com/knotflow/v1/files/9",
                  "https://evil.test/knotflow/v1/files/9/content", "not a url", "http://[::1"):
        assert links.parse(other) is None, other
