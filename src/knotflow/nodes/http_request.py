"""HTTP request (45): send a request built from the canvas and the node's inputs, as Coze Studio's HTTPRequester.

Canvas (`inputs`): `apiInfo {method, url}`, `headers` and `params` (named inputs), `auth {authOpen, authType,
authData}`, `body {bodyType, bodyData}`, `setting {timeout (s), retryTimes}`; `inputParameters` is empty.

- The URL, and a JSON or raw-text body, are `{{…}}` templates over the values they name themselves —
  `{{block_output_<node id>.<field path>}}` and `{{global_variable_<scope>["name"]}}` ("implicit
  dependencies"); any other placeholder stays as written. Values render as in every Coze template (text as it
  is, objects as JSON with sorted keys, null as nothing); a JSON body is not quoted or checked: `"{{x}}"` in
  the template is what makes a string.
- Query `params` are set on the URL's own query (a name in both takes the param's value) and the query is
  written back sorted by name, as Go's url.Values does; `headers` set their names.
- Auth: `BEARER_AUTH` (`Authorization: Bearer <token>`), `CUSTOM_AUTH` (a key and value added to the `header`
  or the `query`), `BASIC_AUTH` (username, password; Coze Studio's editor offers it, its backend refuses it).
- Body: `EMPTY`, `JSON` (application/json), `RAW_TEXT` (text/plain), `FORM_URLENCODED` (sorted by name),
  `FORM_DATA` (multipart; a field whose input is a file is sent as that file's bytes, under its own name and
  content type, at most 20 MB of files in all, as Studio), `BINARY` (the bytes of the file at `fileURL`,
  application/octet-stream). Files are read through `RunServices.files`. A Content-Type header given in
  `headers` wins over the body's (not for FORM_DATA, whose boundary the client writes).
- `setting.timeout` limits each attempt (default KNOTFLOW_HTTP_TIMEOUT); `setting.retryTimes` more attempts
  follow a request that got no response (a connection error, a timeout — not an HTTP error status, not an address
  the guard refuses). The node's `settingOnError` applies on top, as for every node.

Outputs: `body` (the response text, decoded with the charset the response declares, UTF-8 by default),
`statusCode`, `headers` (JSON of the response headers, each by its canonical name with its last value, keys
sorted, as Go writes it). A status of 400 or more fails the node with Studio's message.

The inputs carry Coze Studio's names (`__headers_<md5 of the name>`, `__apiInfo_url_<md5 of the placeholder>`,
…), so a single-node debug run takes the same input keys as Studio's.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from knotflow.contract import (
    FetchedFile,
    FileFetcher,
    FormPart,
    HttpClient,
    HttpRequest,
    HttpResponse,
    HttpSendError,
    Node,
    NodeContext,
    NodeResult,
)
from knotflow.dsl.canvas import NodeDef, Param, parse_params
from knotflow.dsl.types import STRING, to_text
from knotflow.dsl.values import parse_block_input
from knotflow.errors import CanvasError, NodeError
from knotflow.nodes._http_template import ImplicitTemplate, md5_name
from knotflow.nodes._http_wire import TOKEN, decode_body, decode_unicode_escapes, encode_query, headers_json, set_query

CODE_NODE_FAILED = 720701013  # Coze Studio's ErrWorkflowExecuteFail
MAX_FORM_FILE_BYTES = 20 * 1024 * 1024  # Studio's limit on the files of one form-data body
RETRY_BACKOFF, MAX_BACKOFF = 0.1, 2.0  # seconds before the first retry, doubling
ERROR_BODY_CHARS = 2000  # how much of an error response's body the error message quotes

# Coze Studio's input names.
URL_PREFIX, HEADER_PREFIX, PARAM_PREFIX = "__apiInfo_url_", "__headers_", "__params_"
JSON_PREFIX, RAW_TEXT_PREFIX = "__body_bodyData_json_", "__body_bodyData_rawText_"
FORM_DATA_PREFIX, FORM_URLENCODED_PREFIX = "__body_bodyData_formData_", "__body_bodyData_formURLEncoded_"
BINARY_INPUT = "__body_bodyData_binary_fileURL"
BEARER_TOKEN = "__auth_authData_bearerTokenData_token"
CUSTOM_KEY, CUSTOM_VALUE = "__auth_authData_customData_data_Key", "__auth_authData_customData_data_Value"
BASIC_USERNAME, BASIC_PASSWORD = "__auth_authData_basicAuthData_username", "__auth_authData_basicAuthData_password"

EMPTY, JSON_BODY, RAW_TEXT, FORM_DATA, FORM_URLENCODED, BINARY = (
    "EMPTY", "JSON", "RAW_TEXT", "FORM_DATA", "FORM_URLENCODED", "BINARY")
BEARER, CUSTOM, BASIC = "BEARER_AUTH", "CUSTOM_AUTH", "BASIC_AUTH"
IN_HEADER, IN_QUERY = "header", "query"
BODY_CONTENT_TYPES = {JSON_BODY: "application/json", RAW_TEXT: "text/plain",
                      FORM_URLENCODED: "application/x-www-form-urlencoded", BINARY: "application/octet-stream"}


def _with_name(param: Param, name: str) -> Param:
    param.type.name = name
    return Param(name, param.source, param.type)


def _text(value: Any) -> str:
    """A header, query or form value: Studio pre-fills a missing input with the empty string."""
    return "" if value is None else to_text(value)


def _setting(raw: Any, label: str, where: str) -> int:
    if raw is None or raw == "":
        return 0
    try:
        return max(int(float(raw)), 0)
    except (TypeError, ValueError) as exc:
        raise CanvasError(f"{where}: setting.{label} must be a number, got {raw!r}") from exc


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class _Auth:
    kind: str
    location: str = IN_HEADER


class HttpRequestNode(Node):
    type_id = "45"
    display_key = "Http"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        self.where = f"node '{self.title}' ({self.id})"
        inputs = definition.inputs
        api = _dict(inputs.get("apiInfo"))
        self.method = str(api.get("method") or "").strip()
        if not self.method:
            raise CanvasError(f"{self.where}: the HTTP method is required")
        if not TOKEN.fullmatch(self.method):
            raise CanvasError(f"{self.where}: {self.method!r} is not an HTTP method")
        url = str(api.get("url") or "").strip()
        if not url:
            raise CanvasError(f"{self.where}: the URL is required")
        self.url = ImplicitTemplate.parse(url, URL_PREFIX, self.where)
        params: list[Param] = self.url.params
        self.headers = self._named(inputs.get("headers"), HEADER_PREFIX, params)
        self.query = self._named(inputs.get("params"), PARAM_PREFIX, params)
        self.auth = self._parse_auth(_dict(inputs.get("auth")), params)
        self._parse_body(_dict(inputs.get("body")), params)
        setting = _dict(inputs.get("setting"))
        timeout = _setting(setting.get("timeout"), "timeout", self.where)
        self.timeout: float | None = float(timeout) if timeout else None
        self.retries = _setting(setting.get("retryTimes"), "retryTimes", self.where)
        self.params = params

    @staticmethod
    def _named(raw: Any, prefix: str, params: list[Param]) -> list[tuple[str, str]]:
        """Named inputs (headers, query params, form fields): (the name sent, the input's name)."""
        named = []
        for param in parse_params(raw):  # a name given twice: the last one's value is sent
            key = md5_name(prefix, param.name)
            named.append((param.name, key))
            params.append(_with_name(param, key))
        return named

    def _parse_auth(self, auth: dict[str, Any], params: list[Param]) -> _Auth | None:
        if auth.get("authOpen") is not True:
            return None
        kind = auth.get("authType")
        data = _dict(auth.get("authData"))
        names: tuple[str, ...]
        location: Any
        if kind == BEARER:
            fields, names, location = data.get("bearerTokenData"), (BEARER_TOKEN,), IN_HEADER
        elif kind == BASIC:
            fields, names, location = data.get("basicAuthData"), (BASIC_USERNAME, BASIC_PASSWORD), IN_HEADER
        elif kind == CUSTOM:
            custom = _dict(data.get("customData"))
            fields, names, location = custom.get("data"), (CUSTOM_KEY, CUSTOM_VALUE), custom.get("addTo")
            if location not in (IN_HEADER, IN_QUERY):
                raise CanvasError(f"{self.where}: custom authentication is added to 'header' or 'query', not "
                                  f"{location!r}")
        else:
            raise CanvasError(f"{self.where}: invalid auth type {kind!r} (expected {BEARER}, {CUSTOM} or {BASIC})")
        given = parse_params(fields)
        if len(given) < len(names):
            raise CanvasError(f"{self.where}: {kind} needs {len(names)} values in authData, got {len(given)}")
        params += [_with_name(param, name) for param, name in zip(given, names, strict=False)]
        return _Auth(kind, str(location))

    def _parse_body(self, body: dict[str, Any], params: list[Param]) -> None:
        self.body_type = str(body.get("bodyType") or EMPTY)
        data = _dict(body.get("bodyData"))
        self.body_template: ImplicitTemplate | None = None
        self.form: list[tuple[str, str]] = []
        self.form_files: set[str] = set()
        if self.body_type in (JSON_BODY, RAW_TEXT):
            text, prefix = (data.get("json"), JSON_PREFIX) if self.body_type == JSON_BODY else (
                data.get("rawText"), RAW_TEXT_PREFIX)
            self.body_template = ImplicitTemplate.parse(str(text or ""), prefix, self.where)
            params += self.body_template.params
        elif self.body_type == FORM_DATA:
            before = len(params)
            self.form = self._named(_dict(data.get("formData")).get("data"), FORM_DATA_PREFIX, params)
            self.form_files = {param.name for param in params[before:] if param.type.is_file}
        elif self.body_type == FORM_URLENCODED:
            self.form = self._named(data.get("formURLEncoded"), FORM_URLENCODED_PREFIX, params)
        elif self.body_type == BINARY:
            source, info = parse_block_input(_dict(data.get("binary")).get("fileURL"))
            info.type = STRING
            params.append(_with_name(Param(BINARY_INPUT, source, info), BINARY_INPUT))
        elif self.body_type != EMPTY:
            raise CanvasError(f"{self.where}: unknown body type {self.body_type!r}")

    # --- running --------------------------------------------------------------------------------------------
    async def run(self, ctx: NodeContext) -> NodeResult:
        http = ctx.services.http
        if http is None:
            raise self._error("this server offers no outbound HTTP client")
        inputs = ctx.inputs

        def implicit(param: Param) -> Any:
            # The value as its node produced it (Studio converts it to that output's own type, a no-op); the
            # input, already text, when there is none (a single-node debug run gives the inputs directly).
            value = ctx.resolve(param.source)
            return inputs.get(param.name) if value is None else value

        url = self.url.render(implicit)
        headers: list[tuple[str, str]] = []
        for name, key in self.headers:
            headers = _set(headers, name, _text(inputs.get(key)))
        query = [(name, _text(inputs.get(key))) for name, key in self.query]
        headers, query = self._authenticate(inputs, headers, query)
        try:
            request_url = set_query(url, query)
        except ValueError as exc:
            raise self._error(f"invalid URL {url!r}: {exc}") from exc
        body, form, content_type = await self._body(ctx, implicit)
        if form is not None:  # the client writes the multipart Content-Type with its boundary
            headers = [(name, value) for name, value in headers if name.lower() != "content-type"]
        elif content_type is not None and not _has(headers, "content-type"):
            headers.append(("Content-Type", content_type))
        self._check_headers(headers)
        request = HttpRequest(self.method, request_url, headers, body, form, self.timeout)
        response = await self._send(http, request)
        headers_text = headers_json(response.headers)
        text = decode_body(response)
        if response.status >= 400:
            shown = text if len(text) <= ERROR_BODY_CHARS else text[:ERROR_BODY_CHARS] + "…"
            raise self._error(f"request {url} failed, response status code={response.status}, "
                              f"status={f'{response.status} {response.reason}'.strip()}, headers={headers_text}, "
                              f"body={shown}")
        outputs = {"body": text, "statusCode": response.status, "headers": headers_text}
        shown_body = decode_unicode_escapes(text)
        return NodeResult(outputs, trace_output={**outputs, "body": shown_body} if shown_body != text else None)

    def _authenticate(self, inputs: Mapping[str, Any], headers: list[tuple[str, str]],
                      query: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        auth = self.auth
        if auth is None:
            return headers, query
        if auth.kind == BEARER:
            return _set(headers, "Authorization", "Bearer " + _text(inputs.get(BEARER_TOKEN))), query
        if auth.kind == BASIC:
            pair = f"{_text(inputs.get(BASIC_USERNAME))}:{_text(inputs.get(BASIC_PASSWORD))}"
            return _set(headers, "Authorization", "Basic " + base64.b64encode(pair.encode()).decode()), query
        key, value = _text(inputs.get(CUSTOM_KEY)), _text(inputs.get(CUSTOM_VALUE))
        if auth.location == IN_QUERY:
            return headers, [*query, (key, value)]
        return _set(headers, key, value), query

    async def _body(self, ctx: NodeContext, implicit: Callable[[Param], Any]
                    ) -> tuple[bytes | None, list[FormPart] | None, str | None]:
        kind = self.body_type
        content_type = BODY_CONTENT_TYPES.get(kind)
        inputs = ctx.inputs
        if self.body_template is not None:
            return self.body_template.render(implicit).encode(), None, content_type
        if kind == FORM_URLENCODED:
            return encode_query([(name, _text(inputs.get(key))) for name, key in self.form]).encode(), None, \
                content_type
        if kind == BINARY:
            url = _text(inputs.get(BINARY_INPUT))
            if not url:
                raise self._error("the binary body needs a file URL")
            return (await self._fetch(ctx, url, "the binary body")).data, None, content_type
        if kind == FORM_DATA:
            return None, await self._form_parts(ctx), None
        return None, None, None

    async def _form_parts(self, ctx: NodeContext) -> list[FormPart]:
        parts: list[FormPart] = []
        total = 0
        for name, key in self.form:
            value = _text(ctx.inputs.get(key))
            if key not in self.form_files:
                parts.append(FormPart(name, value))
                continue
            if not value:
                raise self._error(f"form-data field {name!r} is a file, but no file was given")
            fetched = await self._fetch(ctx, value, f"form-data field {name!r}")
            total += len(fetched.data)
            if total > MAX_FORM_FILE_BYTES:
                raise self._error(f"too large body: the form-data files exceed {MAX_FORM_FILE_BYTES} bytes")
            parts.append(FormPart(name, fetched))
        return parts

    async def _fetch(self, ctx: NodeContext, url: str, what: str) -> FetchedFile:
        files: FileFetcher | None = ctx.services.files
        if files is None:
            raise self._error(f"{what} is a file, but this server offers no file service")
        try:
            return await files.fetch(url)
        except NodeError as exc:
            raise self._error(f"{what}: {exc.message}") from exc

    def _check_headers(self, headers: list[tuple[str, str]]) -> None:
        for name, value in headers:
            if not TOKEN.fullmatch(name):
                raise self._error(f"invalid header name {name!r}")
            if any(char in value for char in "\r\n\0"):
                raise self._error(f"the value of header {name!r} contains a line break or NUL")

    async def _send(self, http: HttpClient, request: HttpRequest) -> HttpResponse:
        attempt = 0
        while True:
            try:
                return await http.send(request)
            except HttpSendError as exc:
                if not exc.transient or attempt >= self.retries:
                    tries = f" (after {attempt + 1} attempts)" if attempt else ""
                    raise self._error(exc.message + tries) from exc
            attempt += 1
            await asyncio.sleep(min(RETRY_BACKOFF * 2 ** (attempt - 1), MAX_BACKOFF))

    def _error(self, message: str) -> NodeError:
        return NodeError(message, internal_code=CODE_NODE_FAILED, node_id=self.id)


def _has(headers: list[tuple[str, str]], name: str) -> bool:
    return any(key.lower() == name for key, _ in headers)


def _set(headers: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    """Go's Header.Set: the name's earlier values go, whatever their case."""
    return [(key, old) for key, old in headers if key.lower() != name.lower()] + [(name, value)]
