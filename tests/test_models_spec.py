"""The models agree with UnifAPI's official OpenAPI schema (tests/spec, copied verbatim from shared/)."""

from __future__ import annotations

import json
import typing

import pytest
from jsonschema import exceptions as jsonschema_exceptions
from openapi_schema_validator import OAS30Validator

from airflow_provider_unifapi import models
from tests.conftest import SPEC_PATH, sandbox_client

SPEC = json.loads(SPEC_PATH.read_text())
SCHEMAS = SPEC["components"]["schemas"]


def validator(name: str) -> OAS30Validator:
    # OAS30Validator honours `nullable: true` (the file says 3.1 but uses the 3.0 keyword)
    return OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]})


def test_the_spec_file_is_a_valid_openapi_document():
    from openapi_spec_validator import validate

    validate(SPEC)


@pytest.mark.parametrize(
    ("model", "schema"),
    [
        (models.Video, "Video"),
        (models.Author, "Author"),
        (models.Music, "Music"),
        (models.Hashtag, "Hashtag"),
        (models.Pagination, "Pagination"),
        (models.Billing, "Billing"),
        (models.ErrorBilling, "ErrorBilling"),
        (models.ErrorBody, "Error"),
    ],
)
def test_model_fields_match_schema(model, schema):
    spec = SCHEMAS[schema]
    props = set(spec["properties"])
    assert set(model.model_fields) == props
    required_in_model = {name for name, f in model.model_fields.items() if f.is_required()}
    assert required_in_model == set(spec["required"])
    for name, prop in spec["properties"].items():
        if prop.get("nullable"):
            # nullable in the spec -> the model accepts None
            assert _accepts_none(model, name), name


def _accepts_none(model, name) -> bool:
    return type(None) in typing.get_args(model.model_fields[name].annotation)


def test_nullable_music_as_the_spec_describes():
    # `music` is not marked nullable in the schema, but Music's description says null without sound
    assert "null" in SCHEMAS["Music"]["description"].lower()
    assert _accepts_none(models.Video, "music")
    assert not _accepts_none(models.Video, "author")


def test_model_output_validates_against_the_schema(sandbox):
    with sandbox_client(sandbox) as client:
        page = client.get_video_page("5050", limit=50)
        hashtag = client.get_hashtag("5050")
        search = client.search_hashtags("cats", limit=5)
    validator("_tiktok_hashtags__id__videos_get_200_response").validate(page.model_dump(mode="json"))
    validator("_tiktok_hashtags__id__get_200_response").validate(hashtag.model_dump(mode="json"))
    validator("_tiktok_search_hashtags_get_200_response").validate(search.model_dump(mode="json"))
    for video in page.data:
        validator("Video").validate(video.model_dump(mode="json"))


def test_a_schema_violation_fails_validation():
    # the check above can fail: a record without its id is refused
    bad = {"id": 1}
    with pytest.raises(jsonschema_exceptions.ValidationError):
        validator("Video").validate(bad)
