"""The HTTP surface: Coze-compatible open API, SSE framing, errors, auth."""
