"""The dispatch tools' image results: one image, several (search thumbnails), none, and the 4 MiB cap in total."""

from __future__ import annotations

import base64
import json

from blender_mcp_server.tools.dispatch_tools import MAX_IMAGE_BYTES, _image_result

from tests.fakes.files import png


def answer(result: dict) -> dict:
    return {"status": "completed", "command": "search_assets", "target_uuid": "b", "job_id": "j",
            "result": json.dumps(result), "error": None}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_several_images_come_back_in_order_and_leave_the_json():
    images = [{"image_base64": b64(png(4, 4)), "mime_type": "image/png"},
              {"image_base64": b64(png(8, 8)), "mime_type": "image/png"}]
    out = _image_result(answer({"assets": [{"id": "a", "thumbnail": 0}, {"id": "b", "thumbnail": 1}],
                                "images": images}))
    assert [c.type for c in out.content] == ["text", "image", "image"]
    assert base64.b64decode(out.content[2].data) == png(8, 8)
    assert "images" not in json.loads(out.structured_content["result"])


def test_no_thumbnails_is_still_a_result_and_one_image_works_as_before():
    out = _image_result(answer({"assets": [], "images": []}))
    assert [c.type for c in out.content] == ["text"] and out.structured_content["status"] == "completed"
    one = _image_result(answer({"image_base64": b64(png()), "mime_type": "image/png", "width": 8}))
    assert [c.type for c in one.content] == ["text", "image"]


def test_the_cap_counts_every_image_and_bad_entries_are_an_error():
    half = b"\x89PNG\r\n\x1a\n" + b"\0" * (MAX_IMAGE_BYTES // 2 + 1)
    out = _image_result(answer({"images": [{"image_base64": b64(half)}, {"image_base64": b64(half)}]}))
    assert out.structured_content["status"] == "error" and "4 MiB" in out.structured_content["error"]
    bad = _image_result(answer({"images": ["not an entry"]}))
    assert bad.structured_content["error"] == "Blender returned no valid image"
