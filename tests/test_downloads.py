"""The shared downloader, bpy-free against a local file server: cache, resume, checksum and size bound."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests

from blender_mcp_addon.integrations.http import ServiceError, download, max_download_bytes
from tests.fakes.base import FakeHandler, FakeService

DATA = bytes(range(256)) * 400  # 100 KiB
BIG = bytes(range(251)) * 4000  # ~1 MB, several download chunks


class Files(FakeService):
    def __init__(self) -> None:
        self.ranges: list[str | None] = []
        super().__init__()

    def handler(self):
        fake = self

        class Handler(FakeHandler):
            def do_GET(self):
                fake.ranges.append(self.headers.get("Range"))
                if self.path == "/cut":
                    if self.headers.get("Range"):
                        return self._send_file(BIG)
                    # the connection drops after 600 kB of the promised body
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(BIG)))
                    self.end_headers()
                    self.wfile.write(BIG[:600000])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                if self.path == "/norange":
                    return self._send(200, DATA, "application/octet-stream")
                return self._send_file(DATA)

        return Handler


@pytest.fixture
def files():
    fake = Files().start()
    yield fake
    fake.stop()


def test_a_second_download_is_served_from_the_cache(files, tmp_path: Path):
    dest = tmp_path / "a" / "asset_1k.bin"
    md5 = hashlib.md5(DATA).hexdigest()
    assert download(requests.Session(), f"{files.url}/f", dest, md5=md5).read_bytes() == DATA
    download(requests.Session(), f"{files.url}/f", dest, md5=md5)
    assert files.ranges == [None]


def test_a_partial_file_is_resumed_with_a_range_request(files, tmp_path: Path):
    dest = tmp_path / "asset.bin"
    (tmp_path / "asset.bin.part").write_bytes(DATA[:30000])
    download(requests.Session(), f"{files.url}/f", dest, md5=hashlib.md5(DATA).hexdigest())
    assert files.ranges == ["bytes=30000-"] and dest.read_bytes() == DATA
    assert not (tmp_path / "asset.bin.part").exists()


def test_a_dropped_connection_leaves_a_part_that_the_next_try_resumes(files, tmp_path: Path):
    dest = tmp_path / "asset.bin"
    with pytest.raises(ServiceError, match="try again to resume"):
        download(requests.Session(), f"{files.url}/cut", dest)
    kept = (tmp_path / "asset.bin.part").read_bytes()
    # the whole chunks that arrived stay (the one being read when the connection broke is lost)
    assert 0 < len(kept) <= 600000 and BIG.startswith(kept) and not dest.exists()
    download(requests.Session(), f"{files.url}/cut", dest, md5=hashlib.md5(BIG).hexdigest())
    assert files.ranges == [None, f"bytes={len(kept)}-"] and dest.read_bytes() == BIG


def test_a_server_without_ranges_sends_the_whole_file_again(files, tmp_path: Path):
    dest = tmp_path / "asset.bin"
    (tmp_path / "asset.bin.part").write_bytes(b"junk" * 10)
    download(requests.Session(), f"{files.url}/norange", dest)
    assert dest.read_bytes() == DATA


def test_a_wrong_checksum_keeps_nothing(files, tmp_path: Path):
    dest = tmp_path / "asset.bin"
    with pytest.raises(ServiceError, match="checksum mismatch"):
        download(requests.Session(), f"{files.url}/f", dest, md5="0" * 32)
    assert not dest.exists() and not (tmp_path / "asset.bin.part").exists()
    # a cached file that no longer matches its checksum is fetched again
    dest.write_bytes(b"stale")
    download(requests.Session(), f"{files.url}/f", dest, md5=hashlib.md5(DATA).hexdigest())
    assert dest.read_bytes() == DATA


def test_the_size_bound_is_a_clear_error(files, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("BLENDER_MCP_MAX_DOWNLOAD_MB", "0.05")
    assert max_download_bytes() == int(0.05 * 1024 * 1024)
    with pytest.raises(ServiceError, match="larger than the download limit.*BLENDER_MCP_MAX_DOWNLOAD_MB"):
        download(requests.Session(), f"{files.url}/f", tmp_path / "big.bin")
    assert not list(tmp_path.iterdir())
