"""The OpenAPI schema describes the contract, and the docs pages load only local assets."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_schema_describes_every_endpoint_and_error_shape(client: Client) -> None:
    response = client.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    upload = schema["paths"]["/api/upload/"]["post"]
    assert set(upload["responses"]) >= {"202", "400", "413"}
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][form]["properties"]) == {
        "file",
        "scale",
        "quality",
        "quality_target",
        "max_bytes",
        "output_format",
        "webhook_url",
    }
    status = schema["paths"]["/api/status/"]["get"]
    assert set(status["responses"]) >= {"200", "400", "404"}
    assert [p["name"] for p in status["parameters"]] == ["request_id"]
    body = schema["components"]["schemas"]["Status"]["properties"]
    assert {"status", "request_id", "created_at", "completed", "progress", "result_file", "errors"} <= set(
        body
    )
    problem = schema["components"]["schemas"]["Problem"]["properties"]
    assert {"line", "column", "message"} <= set(problem)


def test_swagger_ui_uses_local_static_files_only(client: Client) -> None:
    # (ReDoc's page pulls fonts from Google, so it is not served: the machine may be offline.)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, "the page loads its viewer from somewhere"
    assert all(not s.startswith(("http://", "https://", "//")) for s in sources), sources
    for source in sources:
        if source.startswith("/static/"):
            assert client.get(source).status_code == 200, source


def test_the_explorer_uploads_a_file_lists_upload_first_and_links_back(client: Client) -> None:
    schema = client.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}).json()
    assert list(schema["paths"])[:2] == ["/api/upload/", "/api/status/"], "upload first"
    form = schema["components"]["schemas"]["UploadForm"]["properties"]
    assert form["file"]["type"] == "string" and form["file"]["format"] == "binary"  # a file picker
    assert form["webhook_url"].get("example") == "", "no placeholder value pre-filled"
    assert "(/)" in schema["info"]["description"], "a link back to the app"
