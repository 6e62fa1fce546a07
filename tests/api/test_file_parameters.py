"""Files in workflows, end to end with cozepy: upload, pass `{"file_id": …}` (object, JSON string, list) to a
file-typed Start parameter, and open the signed links the run returns without the API token."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from cozepy import Coze, CozeAPIError, TokenAuth

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.files.links import EXPIRES_PARAM, SIGNATURE_PARAM, FileLinks
from tests.api.conftest import LiveServer
from tests.canvases import canvas, edge, end_return, node, ref
from tests.node_types import register

DOC = 1  # assistType: a document file
IMAGE = 2


def file_canvas() -> dict[str, Any]:
    """Start(doc: file, docs: list of files, note: string) → End({doc, docs, note})."""
    start = node("100001", "1", "Start", outputs=[
        {"name": "doc", "type": "string", "assistType": DOC, "required": False},
        {"name": "docs", "type": "list", "schema": {"type": "string", "assistType": IMAGE}, "required": False},
        {"name": "note", "type": "string", "required": False},
    ])
    end = end_return(doc=ref("100001", "doc"), docs=ref("100001", "docs", "list"), note=ref("100001", "note"))
    return canvas([start, end], [edge("100001", "900001")])


@pytest.fixture(scope="module")
def workflow_id(live: LiveServer) -> str:
    return live.publish(file_canvas())


@pytest.fixture(scope="module")
def coze(live: LiveServer, token: str) -> Coze:
    return Coze(auth=TokenAuth(token), base_url=live.base_url)


def upload(coze: Coze, directory: Path, name: str, payload: bytes) -> str:
    path = directory / name
    path.write_bytes(payload)
    return str(coze.files.upload(file=path).id)


def run(coze: Coze, workflow_id: str, **parameters: Any) -> dict[str, Any]:
    result = coze.workflows.runs.create(workflow_id=workflow_id, parameters=parameters)
    assert result.data is not None
    data: dict[str, Any] = json.loads(result.data)
    return data


def open_link(url: str) -> httpx.Response:
    """What a client without the API token sees when it opens a link a run returned."""
    return httpx.get(url, timeout=30)


def assert_serves(url: str, name: str, payload: bytes) -> None:
    assert parse_qs(urlsplit(url).query)["x-wf-file_name"] == [name]
    response = open_link(url)
    assert response.status_code == 200
    assert response.content == payload
    assert response.headers["content-length"] == str(len(payload))
    assert response.headers["content-disposition"] == f"attachment; filename*=UTF-8''{quote(name, safe='')}"


def test_file_id_object_json_string_and_list(coze: Coze, workflow_id: str, live: LiveServer,
                                             tmp_path: Path) -> None:
    report = b"quarterly report\n" * 500
    first, second = b"\x89PNG first" * 100, b"\xff\xd8 second jpeg" * 70
    report_id = upload(coze, tmp_path, "年度 report.pdf", report)
    first_id = upload(coze, tmp_path, "first.png", first)
    second_id = upload(coze, tmp_path, "second.jpg", second)

    data = run(coze, workflow_id, doc={"file_id": report_id},
               docs=[{"file_id": first_id}, json.dumps({"file_id": second_id})], note="plain text")
    assert data["note"] == "plain text"
    assert data["doc"].startswith(f"{live.base_url}/v1/files/{report_id}/content?")
    assert_serves(data["doc"], "年度 report.pdf", report)
    assert [urlsplit(url).path for url in data["docs"]] == [f"/v1/files/{first_id}/content",
                                                             f"/v1/files/{second_id}/content"]
    assert_serves(data["docs"][0], "first.png", first)
    assert_serves(data["docs"][1], "second.jpg", second)

    # Old doc examples send the reference as a JSON string, and a list as a JSON string of a list.
    data = run(coze, workflow_id, doc=json.dumps({"file_id": report_id}),
               docs=json.dumps([{"file_id": second_id}]))
    assert_serves(data["doc"], "年度 report.pdf", report)
    assert len(data["docs"]) == 1
    assert_serves(data["docs"][0], "second.jpg", second)


def test_urls_pass_through_and_own_links_are_re_signed(coze: Coze, workflow_id: str, live: LiveServer,
                                                       tmp_path: Path) -> None:
    external = "https://example.com/a/b.txt?X-Amz-Signature=abc&x-wf-file_name=b.txt"
    data = run(coze, workflow_id, doc=external)
    # As Coze does: the name parameter is taken off a foreign URL, the rest is kept.
    assert data["doc"] == "https://example.com/a/b.txt?X-Amz-Signature=abc"

    payload = b"own file"
    file_id = upload(coze, tmp_path, "own.txt", payload)
    data = run(coze, workflow_id, doc=f"{live.base_url}/v1/files/{file_id}/content")
    assert_serves(data["doc"], "own.txt", payload)
    again = run(coze, workflow_id, doc=data["doc"])
    assert_serves(again["doc"], "own.txt", payload)


def assert_refused(coze: Coze, workflow_id: str, message: str, **parameters: Any) -> None:
    with pytest.raises(CozeAPIError) as caught:
        coze.workflows.runs.create(workflow_id=workflow_id, parameters=parameters)
    assert caught.value.code == 4000
    assert message in (caught.value.msg or "")


def test_unknown_foreign_and_malformed_references(coze: Coze, workflow_id: str, live: LiveServer,
                                                  tmp_path: Path) -> None:
    assert_refused(coze, workflow_id, "parameter 'doc': file 123456789 does not exist",
                   doc={"file_id": "123456789"})
    assert_refused(coze, workflow_id, "parameter 'docs[1]': file 987654321 does not exist",
                   docs=[{"file_id": upload(coze, tmp_path, "ok.txt", b"ok")}, {"file_id": "987654321"}])

    async def default_space(store: Any) -> str:
        return str((await store.ensure_space()).id)

    # The module's token may use every space; this caller only the workflow's (the default) space.
    coze = Coze(auth=TokenAuth(live.token(spaces=[live.call(default_space)])), base_url=live.base_url)
    other_space = live.space("5550001")
    outsider = Coze(auth=TokenAuth(live.token(spaces=[other_space])), base_url=live.base_url)
    foreign_id = upload(outsider, tmp_path, "secret.txt", b"another space's file")
    # Reported exactly like an unknown id, and the same for the content URL of that file.
    assert_refused(coze, workflow_id, f"parameter 'doc': file {foreign_id} does not exist",
                   doc={"file_id": foreign_id})
    assert_refused(coze, workflow_id, f"parameter 'doc': file {foreign_id} does not exist",
                   doc=f"{live.base_url}/v1/files/{foreign_id}/content")

    for malformed in ({"file_id": "../etc/passwd"}, {"file": "1"}, {"file_id": True}, "{not json", "just words",
                      "ftp://example.com/x", ["a list", "for one file"], 42):
        assert_refused(coze, workflow_id, "parameter 'doc'", doc=malformed)
    assert_refused(coze, workflow_id, "parameter 'docs", docs="[{\"file_id\": ")
    assert_refused(coze, workflow_id, "parameter 'docs'", docs={"file_id": "1"})


def test_tampered_and_expired_links_are_refused(coze: Coze, workflow_id: str, live: LiveServer,
                                                tmp_path: Path) -> None:
    file_id = upload(coze, tmp_path, "t.txt", b"tamper me")
    url = run(coze, workflow_id, doc={"file_id": file_id})["doc"]
    query = parse_qs(urlsplit(url).query)
    base = f"{live.base_url}/v1/files/{file_id}/content"
    expires, signature = query[EXPIRES_PARAM][0], query[SIGNATURE_PARAM][0]

    later = str(int(expires) + 3600)
    tampered = [
        f"{base}?{EXPIRES_PARAM}={later}&{SIGNATURE_PARAM}={signature}",  # a longer life
        f"{base}?{EXPIRES_PARAM}={expires}&{SIGNATURE_PARAM}={signature[:-2]}xx",
        f"{live.base_url}/v1/files/{int(file_id) + 1}/content?{EXPIRES_PARAM}={expires}&{SIGNATURE_PARAM}={signature}",
        f"{base}?{EXPIRES_PARAM}={expires}",
        f"{base}?{EXPIRES_PARAM}=soon&{SIGNATURE_PARAM}={signature}",
    ]
    for link in tampered:
        response = open_link(link)
        assert response.status_code == 403, link
        assert response.json()["code"] == 4101

    # A link signed with the server's secret whose time is up.
    links = FileLinks.from_settings(live.settings)
    expired = links.signed_url(file_id, "t.txt", now=time.time() - links.ttl - 10)
    response = open_link(expired)
    assert response.status_code == 403 and "expired" in response.json()["msg"]
    assert open_link(links.signed_url(file_id, "t.txt")).content == b"tamper me"

    # Without a signature the endpoint still wants the API token.
    assert open_link(base).json()["code"] == 4100


class FileInfoNode(Node):
    """Test-only node that looks inside a file the way a real one would: through the run's `services.files`."""

    type_id = "test-file-info"
    display_key = "Code"

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        fetched = await ctx.services.files.fetch(inputs["file"])
        return NodeResult({"name": fetched.file_name, "size": len(fetched.data)})


register(FileInfoNode)


def test_a_node_reads_the_uploaded_files_name_and_size(coze: Coze, live: LiveServer, tmp_path: Path) -> None:
    start = node("100001", "1", "Start", outputs=[{"name": "doc", "type": "string", "assistType": DOC}])
    info = node("200", "test-file-info", "Info", inputs={"inputParameters": [
        {"name": "file", "input": {"type": "string", "assistType": DOC, "value": ref("100001", "doc")["value"]}}]},
        outputs=[{"name": "name", "type": "string"}, {"name": "size", "type": "integer"}])
    end = end_return(name=ref("200", "name"), size=ref("200", "size", "integer"))
    workflow_id = live.publish(canvas([start, info, end], [edge("100001", "200"), edge("200", "900001")]))
    file_id = upload(coze, tmp_path, "季度报告.txt", b"x" * 1234)
    assert run(coze, workflow_id, doc={"file_id": file_id}) == {"name": "季度报告.txt", "size": 1234}
    # A URL of a private address is refused (no allow-list in this server's settings): the run fails, clearly.
    with pytest.raises(CozeAPIError) as refused:
        run(coze, workflow_id, doc="http://127.0.0.1:9/secret.txt")
    assert "non-public address 127.0.0.1" in str(refused.value) and "KNOTFLOW_URL_FETCH_ALLOW" in str(refused.value)
