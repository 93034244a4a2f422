"""The command catalog (server side) and the addon's handlers agree, name for name and param for param."""

from __future__ import annotations

import inspect

import pytest

from blender_mcp_addon.handlers import load_all
from blender_mcp_addon.protocol.catalog import CATALOG, TIMEOUTS


def test_every_catalog_command_has_a_handler_with_the_same_params():
    handlers = load_all()
    assert set(CATALOG) == set(handlers)
    for name, spec in CATALOG.items():
        params = list(inspect.signature(handlers[name].fn).parameters)
        assert params == [p.name for p in spec.params], name
        assert spec.integration == handlers[name].integration, name


def test_spec_timeouts():
    assert TIMEOUTS == {"status": 15.0, "read": 30.0, "exec": 60.0, "download": 180.0}
    assert CATALOG["get_polyhaven_status"].timeout == 15
    assert CATALOG["get_scene_info"].timeout == 30
    assert CATALOG["execute_code"].timeout == 60 and CATALOG["generate_hyper3d_model_via_text"].timeout == 60
    assert CATALOG["download_polyhaven_asset"].timeout == 180 and CATALOG["export_scene"].timeout == 180


def test_validation_names_every_problem():
    with pytest.raises(ValueError) as exc:
        CATALOG["render_image"].validate({"engine": "povray", "samples": 0, "what": 1})
    text = str(exc.value)
    assert "engine" in text and "samples" in text and "what" in text
