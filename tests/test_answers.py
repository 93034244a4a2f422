"""The one way answers are read (protocol.answers.read_answer), on the result types today's clients return."""

from __future__ import annotations

from fastmcp.client.client import CallToolResult
from mcp.types import CallToolResult as SdkCallToolResult
from mcp.types import ImageContent, TextContent

from blender_mcp_addon.protocol.answers import ErrorCode, bus_error, dispatch_answer, is_error, read_answer


def _text(text: str) -> TextContent:
    return TextContent(type="text", text=text)


def test_reads_the_first_text_of_fastmcp_and_sdk_results():
    answer = dispatch_answer("completed", "render_image", "b-1", "j-1", result='{"w": 1}')
    image = ImageContent(type="image", data="AAAA", mimeType="image/png")
    text = '{"status": "completed", "command": "render_image", "target_uuid": "b-1", "job_id": "j-1", ' \
           '"result": "{\\"w\\": 1}", "error": ""}'
    fastmcp_result = CallToolResult(content=[_text(text), image], structured_content=None, meta=None, data=None)
    sdk_result = SdkCallToolResult(content=[_text(text), image])
    assert read_answer(fastmcp_result) == answer == read_answer(sdk_result)


def test_structured_content_when_there_is_no_text():
    result = CallToolResult(content=[], structured_content={"status": "ok"}, meta=None, data=None)
    assert read_answer(result) == {"status": "ok"}


def test_a_tool_error_reads_as_a_refusal_never_an_exception():
    schema = SdkCallToolResult(content=[_text("Input validation error: 'x' is a required property")], isError=True)
    answer = read_answer(schema)
    assert is_error(answer, ErrorCode.TOOL_ERROR) and "required property" in answer["message"]
    assert is_error(read_answer(SdkCallToolResult(content=[_text("[1, 2]")])), ErrorCode.TOOL_ERROR)
    assert is_error(read_answer(SdkCallToolResult(content=[])), ErrorCode.TOOL_ERROR)
    refusal = bus_error(ErrorCode.RATE_LIMITED, "slow down", retry_after=3)
    assert read_answer(SdkCallToolResult(content=[_text('{"status": "error", "error": "rate_limited", '
                                                         '"message": "slow down", "retry_after": 3}')])) == refusal
