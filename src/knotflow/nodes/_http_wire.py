"""What the HTTP request node writes and reads the way Go's standard library does, which Coze Studio's node uses:
url.Values' query encoding, textproto's canonical header names, encoding/json's map output; and the charset a
response declares.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote_plus, urlsplit, urlunsplit

from knotflow.contract import HttpResponse

TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP token (RFC 9110): a method, a header name
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]+)", re.IGNORECASE)


def encode_query(pairs: list[tuple[str, str]]) -> str:
    """Go's url.Values.Encode: sorted by name (values of one name in order), `+` for spaces."""
    ordered = sorted(range(len(pairs)), key=lambda i: pairs[i][0])
    return "&".join(f"{quote_plus(pairs[i][0])}={quote_plus(pairs[i][1])}" for i in ordered)


def set_query(url: str, updates: list[tuple[str, str]]) -> str:
    """`url` with each update replacing every value of its name in the query, the query then re-encoded."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    for name, value in updates:
        pairs = [pair for pair in pairs if pair[0] != name] + [(name, value)]
    return urlunsplit(parts._replace(query=encode_query(pairs)))


def canonical_header(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: `content-type` → `Content-Type`; a name that is not a token stays."""
    if not TOKEN.fullmatch(name):
        return name
    return "-".join(word[:1].upper() + word[1:].lower() for word in name.split("-"))


def headers_json(headers: Iterable[tuple[str, str]]) -> str:
    """The `headers` output: each header by its canonical name with its last value, as Go's encoding/json
    writes a map (keys sorted, `<`, `>`, `&` escaped)."""
    last: dict[str, str] = {}
    for name, value in headers:
        last[canonical_header(name)] = value
    text = json.dumps(dict(sorted(last.items())), ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def decode_body(response: HttpResponse) -> str:
    """The body as text, in the charset the response's Content-Type declares (UTF-8 when none or unknown)."""
    content_type = next((value for name, value in reversed(response.headers) if name.lower() == "content-type"), "")
    match = _CHARSET.search(content_type)
    encoding = "utf-8"
    if match:
        with contextlib.suppress(LookupError):
            encoding = codecs.lookup(match.group(1)).name
    return response.body.decode(encoding, errors="replace")


def decode_unicode_escapes(text: str) -> str:
    """Studio's trace shows a body with its `\\uXXXX` escapes decoded (a lone surrogate as U+FFFD)."""
    def char(match: re.Match[str]) -> str:
        code = int(match.group(1), 16)
        return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)
    return _UNICODE_ESCAPE.sub(char, text)
