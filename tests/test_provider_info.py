"""Provider metadata: valid for Airflow, and in agreement with the hook's form methods."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import airflow

from airflow_provider_unifapi.get_provider_info import get_provider_info
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook


def test_entry_point_and_schema():
    eps = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_unifapi")
    ]
    assert len(eps) == 1
    info = eps[0].load()()
    assert info["package-name"] == "airflow-provider-unifapi"  # must equal the distribution name
    import jsonschema

    schema_file = Path(airflow.__file__).parent / "provider_info.schema.json"
    jsonschema.validate(info, json.loads(schema_file.read_text()))


def test_provider_info_is_cheap_to_import():
    code = "import sys, airflow_provider_unifapi.get_provider_info as m; m.get_provider_info(); print(sorted(k for k in sys.modules if k.split('.')[0] in ('airflow','httpx','pydantic')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_form_declarations_agree_with_hook_methods():
    conn_type = get_provider_info()["connection-types"][0]
    assert conn_type["connection-type"] == UnifAPIHook.conn_type == "unifapi"
    assert conn_type["hook-class-name"] == f"{UnifAPIHook.__module__}.{UnifAPIHook.__qualname__}"
    assert conn_type["hook-name"] == UnifAPIHook.hook_name
    behaviour = UnifAPIHook.get_ui_field_behaviour()
    declared = conn_type["ui-field-behaviour"]
    assert behaviour["hidden_fields"] == declared["hidden-fields"]
    assert behaviour["relabeling"] == declared["relabeling"] == {"host": "Base URL", "password": "API key"}
    assert behaviour["placeholders"] == declared["placeholders"]
    try:
        widgets = UnifAPIHook.get_connection_form_widgets()
    except ImportError:  # Airflow 3 without the FAB UI: the declarative table is what is used
        widgets = None
    if widgets is not None:
        assert set(widgets) == set(conn_type["conn-fields"])
        for name, field in widgets.items():
            spec = conn_type["conn-fields"][name]
            assert str(field.args[0]) == spec["label"]
            assert "default" not in field.kwargs  # a saved form stores only what the user set
            assert str(field.kwargs["description"]) == spec["description"]
    # every form field is an extra the hook actually reads
    from airflow_provider_unifapi.client.config import EXTRA_FIELDS

    assert set(conn_type["conn-fields"]) == {spec.name for spec in EXTRA_FIELDS}


def test_airflow_lists_the_provider_and_connection_type():
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = [p["package_name"] for p in json.loads(out[out.index("[") :])]
    assert "airflow-provider-unifapi" in names
    from airflow.providers_manager import ProvidersManager

    hooks = ProvidersManager().hooks
    assert "unifapi" in hooks
    assert hooks["unifapi"].hook_class_name.endswith("UnifAPIHook")


def test_every_extra_has_a_label_help_text_range_and_no_default():
    from airflow_provider_unifapi.client.config import EXTRA_FIELDS

    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    assert list(fields) == [spec.name for spec in EXTRA_FIELDS]  # form order = the table's order
    for spec in EXTRA_FIELDS:
        field = fields[spec.name]
        assert field["label"] == spec.label
        assert field["description"].startswith(spec.help)
        # Airflow 3's form shows the description, not the schema: the range and default are in the text.
        assert f"Accepts {spec.range_text()}; default {spec.default_text()}." in field["description"]
        assert "default" not in field["schema"]  # a saved form stores only what the user set
        assert "null" in field["schema"]["type"]  # an empty input is allowed (the default applies)
    assert fields["max_connections"]["schema"] == {"type": ["integer", "null"], "minimum": 1, "maximum": 1000}


def test_port_is_shown_for_the_test_button_and_the_rest_hidden():
    behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
    # Airflow 3.3's Test button sends the stored port (an empty one as 0): the form must show Port.
    assert "port" not in behaviour["hidden-fields"]
    assert set(behaviour["hidden-fields"]) == {"schema", "login", "extra"}
    assert "443" in behaviour["placeholders"]["port"]
