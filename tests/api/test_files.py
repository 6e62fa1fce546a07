"""Coze's files API: cozepy's files.upload / files.retrieve, knotflow's content endpoint, and every error."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from cozepy import Coze, CozeAPIError, TokenAuth

from knotflow.config import Settings
from knotflow.files import FileTooLarge, LocalFileStorage
from tests.api.conftest import LiveServer, free_port, serving

SMALL_LIMIT = 10_000


def stored_files(server: LiveServer) -> list[Path]:
    root = server.settings.data_dir / "files"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def code_of(response: httpx.Response) -> int:
    assert response.status_code == 200
    assert response.headers["x-tt-logid"]
    return int(response.json()["code"])


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("small-uploads"), port=free_port(),
                        max_upload_bytes=SMALL_LIMIT)
    with serving(settings) as server:
        yield server


def test_cozepy_upload_then_retrieve_then_content(live: LiveServer, token: str, http: httpx.Client,
                                                  tmp_path: Path) -> None:
    path = tmp_path / "héllo wörld.txt"
    payload = b"hello, files\n" * 1000 + bytes(range(256))
    path.write_bytes(payload)
    coze = Coze(auth=TokenAuth(token), base_url=live.base_url)
    uploaded = coze.files.upload(file=path)
    assert uploaded.id.isdigit()
    assert uploaded.bytes == len(payload) and uploaded.file_name == "héllo wörld.txt"
    assert isinstance(uploaded.created_at, int) and uploaded.created_at > 1_700_000_000
    again = coze.files.retrieve(file_id=uploaded.id)
    assert again.model_dump() == uploaded.model_dump()

    response = http.get(f"/v1/files/{uploaded.id}/content")
    assert response.status_code == 200 and response.content == payload
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-length"] == str(len(payload))
    assert "attachment" in response.headers["content-disposition"]


def test_cozepy_upload_of_bytes(live: LiveServer, token: str, http: httpx.Client) -> None:
    coze = Coze(auth=TokenAuth(token), base_url=live.base_url)
    uploaded = coze.files.upload(file=b"\x00\x01raw")
    assert uploaded.bytes == 5 and uploaded.file_name == "upload"  # httpx's name for unnamed bytes
    assert http.get(f"/v1/files/{uploaded.id}/content").content == b"\x00\x01raw"


def test_the_raw_envelope(http: httpx.Client) -> None:
    response = http.post("/v1/files/upload", files={"file": ("a.png", b"\x89PNG...", "image/png")})
    body = response.json()
    assert body["code"] == 0 and body["msg"] == "" and body["detail"]["logid"]
    assert set(body["data"]) == {"id", "bytes", "created_at", "file_name"}
    assert isinstance(body["data"]["id"], str) and isinstance(body["data"]["created_at"], int)
    content = http.get(f"/v1/files/{body['data']['id']}/content")
    assert content.headers["content-type"] == "image/png"


def test_empty_file_is_4300(live: LiveServer, http: httpx.Client) -> None:
    before = stored_files(live)
    assert code_of(http.post("/v1/files/upload", files={"file": ("empty.txt", b"")})) == 4300
    assert stored_files(live) == before


def test_two_files_are_4301(live: LiveServer, http: httpx.Client) -> None:
    before = stored_files(live)
    two = [("file", ("a.txt", b"a")), ("file", ("b.txt", b"b"))]
    assert code_of(http.post("/v1/files/upload", files=two)) == 4301
    other = [("file", ("a.txt", b"a")), ("extra", ("b.txt", b"b"))]
    assert code_of(http.post("/v1/files/upload", files=other)) == 4301
    assert stored_files(live) == before


def test_an_extra_plain_field_is_ignored(http: httpx.Client) -> None:
    response = http.post("/v1/files/upload", files={"file": ("a.txt", b"abc")}, data={"purpose": "x"})
    assert response.json()["data"]["bytes"] == 3


def test_unsupported_uploads_are_4303(live: LiveServer, http: httpx.Client) -> None:
    before = stored_files(live)
    assert code_of(http.post("/v1/files/upload", json={"file": "abc"})) == 4303
    assert code_of(http.post("/v1/files/upload", content=b"abc")) == 4303
    assert code_of(http.post("/v1/files/upload", data={"file": "not a file part? still a field"})) == 4303
    assert code_of(http.post("/v1/files/upload", files={"document": ("a.txt", b"abc")})) == 4303
    assert stored_files(live) == before


def test_corrupt_uploads_are_4304(live: LiveServer, http: httpx.Client) -> None:
    before = stored_files(live)
    no_boundary = {"content-type": "multipart/form-data"}
    assert code_of(http.post("/v1/files/upload", content=b"abc", headers=no_boundary)) == 4304
    truncated = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
                 b"part of the file, then no closing boundary")
    headers = {"content-type": "multipart/form-data; boundary=XyZ"}
    assert code_of(http.post("/v1/files/upload", content=truncated, headers=headers)) == 4304
    garbage = b"this is not multipart at all\r\n" * 10
    assert code_of(http.post("/v1/files/upload", content=garbage, headers=headers)) == 4304
    assert stored_files(live) == before


def test_unknown_files_are_4200(http: httpx.Client) -> None:
    assert code_of(http.get("/v1/files/retrieve", params={"file_id": "1234567890"})) == 4200
    assert code_of(http.get("/v1/files/retrieve", params={"file_id": "../etc/passwd"})) == 4200
    assert code_of(http.get("/v1/files/1234567890/content")) == 4200
    assert code_of(http.get("/v1/files/retrieve")) == 4000


def test_cozepy_raises_4200_for_an_unknown_file(live: LiveServer, token: str) -> None:
    coze = Coze(auth=TokenAuth(token), base_url=live.base_url)
    with pytest.raises(CozeAPIError) as caught:
        coze.files.retrieve(file_id="1")
    assert caught.value.code == 4200


def test_no_token_is_4100(live: LiveServer, http: httpx.Client) -> None:
    file_id = http.post("/v1/files/upload", files={"file": ("a.txt", b"abc")}).json()["data"]["id"]
    with httpx.Client(base_url=live.base_url) as anonymous:
        assert code_of(anonymous.post("/v1/files/upload", files={"file": ("a.txt", b"abc")})) == 4100
        assert code_of(anonymous.get("/v1/files/retrieve", params={"file_id": file_id})) == 4100
        assert code_of(anonymous.get(f"/v1/files/{file_id}/content")) == 4100
        bad = {"Authorization": "Bearer pat_wrong"}
        assert code_of(anonymous.get(f"/v1/files/{file_id}/content", headers=bad)) == 4100


def test_files_are_visible_only_in_their_space(live: LiveServer) -> None:
    def client(token: str) -> httpx.Client:
        return httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {token}"})

    live.space("7001")
    with client(live.token(spaces=["7001"])) as owner, client(live.token(spaces=["7002"])) as stranger, \
            client(live.token()) as admin:
        file_id = owner.post("/v1/files/upload", files={"file": ("s.txt", b"secret")}).json()["data"]["id"]
        assert owner.get(f"/v1/files/{file_id}/content").content == b"secret"
        assert code_of(stranger.get("/v1/files/retrieve", params={"file_id": file_id})) == 4200
        assert code_of(stranger.get(f"/v1/files/{file_id}/content")) == 4200
        assert admin.get("/v1/files/retrieve", params={"file_id": file_id}).json()["code"] == 0


# --- the size limit, on a server that allows SMALL_LIMIT bytes ------------------------------------------------
def _small_client(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.token()}"},
                        timeout=30)


def test_a_file_at_the_limit_is_accepted(small: LiveServer) -> None:
    with _small_client(small) as client:
        response = client.post("/v1/files/upload", files={"file": ("full.bin", b"x" * SMALL_LIMIT)})
        assert response.json()["data"]["bytes"] == SMALL_LIMIT


def test_too_large_while_streaming_is_4302_and_leaves_nothing(small: LiveServer) -> None:
    before = stored_files(small)
    with _small_client(small) as client:
        # Within the Content-Length allowance (limit + multipart overhead): refused while streaming.
        response = client.post("/v1/files/upload", files={"file": ("big.bin", b"x" * (SMALL_LIMIT + 1))})
        assert code_of(response) == 4302

        # Chunked, so no Content-Length at all: much larger than the limit, refused while streaming.
        def body() -> Iterator[bytes]:
            yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="huge.bin"\r\n\r\n'
            for _ in range(40):
                yield b"y" * 4096
            yield b"\r\n--B--\r\n"

        headers = {"content-type": "multipart/form-data; boundary=B"}
        response = client.post("/v1/files/upload", content=body(), headers=headers)
        assert code_of(response) == 4302
    assert stored_files(small) == before
    assert not any((small.settings.data_dir / "files" / ".tmp").glob("*"))


def test_too_large_by_content_length_is_refused_before_the_body(small: LiveServer) -> None:
    token = small.token()
    request = (f"POST /v1/files/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
               "Content-Type: multipart/form-data; boundary=B\r\n"
               f"Content-Length: {10**12}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", small.settings.port), timeout=10) as sock:
        sock.sendall(request + b"--B\r\n")  # the server answers without waiting for the terabyte
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b'"code":4302' in body


def test_cozepy_sees_4302(small: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"z" * (SMALL_LIMIT * 3))
    coze = Coze(auth=TokenAuth(small.token()), base_url=small.base_url)
    with pytest.raises(CozeAPIError) as caught:
        coze.files.upload(file=path)
    assert caught.value.code == 4302


# --- LocalFileStorage on its own ------------------------------------------------------------------------------
async def _chunks(*parts: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if fail:
        raise RuntimeError("the upload broke off")


async def test_local_storage_round_trip_and_cleanup(tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path / "files")
    assert await storage.save("1234", _chunks(b"ab", b"c" * 2_000_000), limit=3_000_000) == 2_000_002
    assert b"".join([chunk async for chunk in await storage.open("1234")]) == b"ab" + b"c" * 2_000_000
    with pytest.raises(FileTooLarge):
        await storage.save("1235", _chunks(b"abc", b"def"), limit=5)
    with pytest.raises(RuntimeError):
        await storage.save("1236", _chunks(b"abc", fail=True), limit=5)
    for missing in ("1235", "1236"):
        with pytest.raises(FileNotFoundError):
            await storage.open(missing)
    assert [p.name for p in (tmp_path / "files").rglob("*") if p.is_file()] == ["1234"]
    await storage.delete("1234")
    await storage.delete("1234")  # deleting twice is fine
    with pytest.raises(ValueError):
        await storage.open("../knotflow.db")
