"""A real local S3 server for the storage tests: moto in server mode on 127.0.0.1.

Outside CI the tests that need it skip when moto is not installed; in CI they run
(``require_or_skip``). Import the fixtures into a test module to use them.
"""

from __future__ import annotations

import uuid
from importlib.util import find_spec

import pytest

from sciweek.storage import s3_client

from .conftest import require_or_skip
from .live_server import free_port


@pytest.fixture(scope="session")
def s3_endpoint():
    """The address of a moto S3 server running for the whole test session."""
    require_or_skip(
        find_spec("moto") is not None, "moto is not installed (pip install 'moto[server]')"
    )
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_settings(s3_endpoint) -> dict:
    """Configuration for the ``s3`` backend on a new, empty bucket of the moto server."""
    settings = {
        "SCIWEEK_STORAGE_BACKEND": "s3",
        "SCIWEEK_S3_BUCKET": f"sciweek-test-{uuid.uuid4().hex[:12]}",
        "SCIWEEK_S3_ENDPOINT_URL": s3_endpoint,
        "SCIWEEK_S3_REGION": "us-east-1",
        "SCIWEEK_S3_ACCESS_KEY_ID": "testing",
        "SCIWEEK_S3_SECRET_ACCESS_KEY": "testing",
        "SCIWEEK_S3_PREFIX": "site-a/",
        "SCIWEEK_S3_ADDRESSING_STYLE": "path",
    }
    s3_client(settings).create_bucket(Bucket=settings["SCIWEEK_S3_BUCKET"])
    return settings


def bucket_keys(settings: dict) -> list[str]:
    """Every object name in the bucket (prefix included), read with boto3 directly."""
    answer = s3_client(settings).list_objects_v2(Bucket=settings["SCIWEEK_S3_BUCKET"])
    return sorted(item["Key"] for item in answer.get("Contents", ()))
