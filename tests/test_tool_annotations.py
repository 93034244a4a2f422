"""Every dispatch tool's MCP hints follow from the catalog, and say what a client needs to decide on approval."""

from __future__ import annotations

from blender_mcp_server.tools.dispatch_tools import (
    ADDS_ONLY,
    IDEMPOTENT_CHANGES,
    MULTI_SERVICE,
    OVERWRITES_FILES,
    annotations_for,
)

from blender_mcp_addon.protocol.catalog import CATALOG, COMMANDS


def test_every_catalog_command_gets_sensible_hints():
    for spec in COMMANDS:
        hints = annotations_for(spec)
        assert hints.title and hints.title[0].isupper() and "_" not in hints.title, spec.name
        assert None not in (hints.readOnlyHint, hints.destructiveHint, hints.idempotentHint, hints.openWorldHint)
        if spec.changes_scene or spec.name in OVERWRITES_FILES:
            assert not hints.readOnlyHint, spec.name  # a client must not run it unasked
        if hints.readOnlyHint:
            assert not hints.destructiveHint and hints.idempotentHint, spec.name
        if spec.timeout_class == "status" or spec.name.startswith(("get_", "list_", "search_")):
            assert hints.readOnlyHint, spec.name  # probes and reads run without approval
        assert hints.openWorldHint == (spec.integration is not None or spec.name in MULTI_SERVICE), spec.name
    for name in OVERWRITES_FILES | ADDS_ONLY | IDEMPOTENT_CHANGES | MULTI_SERVICE:
        assert name in CATALOG, f"{name} is no catalog command"


def test_the_hints_that_matter_most():
    hint = {name: annotations_for(spec) for name, spec in CATALOG.items()}
    assert hint["execute_code"].destructiveHint and not hint["execute_code"].idempotentHint
    for name in ("save_blend", "export_scene"):
        assert not hint[name].readOnlyHint and hint[name].destructiveHint and hint[name].idempotentHint
    for name in ("download_polyhaven_asset", "search_sketchfab_models", "generate_hyper3d_model_via_text"):
        assert hint[name].openWorldHint
    # a paid remote generation changes no scene but is no read either
    assert not hint["generate_hyper3d_model_via_text"].readOnlyHint
    assert not hint["generate_hyper3d_model_via_text"].destructiveHint
    assert hint["get_polyhaven_status"].readOnlyHint and not hint["get_polyhaven_status"].openWorldHint
    assert hint["render_image"].readOnlyHint and hint["get_scene_info"].readOnlyHint
    assert hint["get_polyhaven_categories"].title == "Get Poly Haven categories"
    assert not hint["generate_3d"].readOnlyHint and hint["generate_3d"].openWorldHint
    assert hint["generate_3d"].title == "Generate 3D"
    assert hint["generation_status"].readOnlyHint and hint["generation_status"].openWorldHint
