"""File values as Coze writes them: URLs that may carry the file's name in an `x-wf-file_name` parameter."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

FILE_NAME_PARAM = "x-wf-file_name"


def strip_file_name_param(url: str) -> str:
    parts = urlsplit(url)
    if FILE_NAME_PARAM not in parts.query:
        return url
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != FILE_NAME_PARAM]
    return urlunsplit(parts._replace(query=urlencode(query)))
