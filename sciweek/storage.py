"""File storage: one interface, a local folder or an S3-compatible bucket.

Files the application keeps outside the database — activity summaries' photos, roster
uploads waiting between preview and confirm — go through ``get_storage()``. The backend is
chosen by ``SCIWEEK_STORAGE_BACKEND``: ``local`` (a folder, one server) or ``s3`` (a bucket
that several application servers share: AWS S3, MinIO, Aliyun OSS, Tencent COS, ...).

Keys are relative, slash-separated names such as ``summaries/12/<uuid>.jpg``: each part
starts with a letter or digit and holds only letters, digits, ``.``, ``_`` and ``-``, so no
key can climb out of the local folder (``..``), be absolute, or hide a backslash. Files are
never served from the bucket directly: routes check permissions and stream them through
``open``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from flask import current_app

_KEY_PART = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}"  # not "." first: no "..", no hidden files
_KEY = re.compile(rf"{_KEY_PART}(?:/{_KEY_PART}){{0,7}}")
_EXTENSION = "sciweek_storage"


class InvalidKey(ValueError):
    """A key that is not a plain relative name (``..``, absolute, odd characters)."""


class NotStored(FileNotFoundError):
    """No file is stored under the key."""


@dataclass(frozen=True)
class StoredFile:
    """One stored file as a listing shows it."""

    key: str
    size: int
    modified_at: datetime  # timezone-aware UTC


def check_key(key: str) -> str:
    """``key`` when it is a plain relative name, else InvalidKey."""
    if not isinstance(key, str) or not _KEY.fullmatch(key) or ".." in key:
        raise InvalidKey(f"invalid storage key: {key!r}")
    return key


class Storage(Protocol):
    """What every backend offers."""

    def put(self, key: str, data: bytes, content_type: str = ...) -> None:
        """Store ``data`` under ``key``, replacing what was there."""

    def get(self, key: str) -> bytes:
        """The stored bytes; NotStored when there are none."""

    def open(self, key: str) -> IO[bytes]:
        """A readable binary stream of the stored file (close it); NotStored if absent."""

    def delete(self, key: str) -> None:
        """Remove the file; nothing happens when there is none."""

    def exists(self, key: str) -> bool:
        """Is a file stored under ``key``?"""

    def list(self, prefix: str) -> Iterator[StoredFile]:
        """The files whose keys start with ``prefix`` (a folder such as ``roster_uploads/``)."""


class LocalStorage:
    """Files in a folder of this server (``SCIWEEK_STORAGE_PATH``)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        # The key's syntax already excludes "..": this guards against a symlink too.
        if not path.is_relative_to(self.root):
            raise InvalidKey(f"invalid storage key: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside its place and renamed: a reader never sees half a file.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    def open(self, key: str) -> IO[bytes]:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotStored(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[StoredFile]:
        folder = self.root / prefix.rstrip("/") if prefix else self.root
        if prefix:
            check_key(prefix.rstrip("/"))
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name.startswith(".part-"):
                continue
            stat = path.stat()
            yield StoredFile(
                key=path.relative_to(self.root).as_posix(),
                size=stat.st_size,
                modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
            )


class S3Storage:
    """Objects in an S3-compatible bucket, under an optional prefix (``sciweek/``)."""

    def __init__(self, client, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self._name(key), Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        body = self.open(key)
        try:
            return body.read()
        finally:
            body.close()

    def open(self, key: str) -> IO[bytes]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if _missing(exc):
                raise NotStored(key) from None
            raise
        return answer["Body"]

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def list(self, prefix: str) -> Iterator[StoredFile]:
        if prefix:
            check_key(prefix.rstrip("/"))
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        for page in pages:
            for item in page.get("Contents", ()):
                yield StoredFile(
                    key=item["Key"][len(self.prefix) :],
                    size=item["Size"],
                    modified_at=item["LastModified"].astimezone(UTC),
                )


def _missing(error: ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


def s3_client(config: dict):
    """A boto3 S3 client from the ``SCIWEEK_S3_*`` settings (thread-safe, one per app)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=config["SCIWEEK_S3_ENDPOINT_URL"] or None,
        region_name=config["SCIWEEK_S3_REGION"],
        aws_access_key_id=config["SCIWEEK_S3_ACCESS_KEY_ID"] or None,
        aws_secret_access_key=config["SCIWEEK_S3_SECRET_ACCESS_KEY"] or None,
        config=BotoConfig(
            s3={"addressing_style": config["SCIWEEK_S3_ADDRESSING_STYLE"]},
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
            # Checksums only where S3 requires them: several S3-compatible services
            # refuse the CRC headers newer SDKs send by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def storage_from_config(config: dict) -> Storage:
    """The backend the configuration names."""
    if config["SCIWEEK_STORAGE_BACKEND"] == "s3":
        return S3Storage(
            s3_client(config), config["SCIWEEK_S3_BUCKET"], config["SCIWEEK_S3_PREFIX"]
        )
    return LocalStorage(config["SCIWEEK_STORAGE_PATH"])


def get_storage() -> Storage:
    """The current application's storage: made on first use from its configuration (tests
    may change it before), then shared by the application's threads."""
    storage = current_app.extensions.get(_EXTENSION)
    if storage is None:
        storage = current_app.extensions[_EXTENSION] = storage_from_config(current_app.config)
    return storage


def delete_quietly(storage: Storage, keys: list[str]) -> None:
    """Remove files written for a change that did not happen; a failure is only logged
    (an orphan file is harmless, a second error hiding the first is not)."""
    for key in keys:
        try:
            storage.delete(key)
        except Exception:  # noqa: BLE001 - clean-up after a failure must not raise
            current_app.logger.warning("could not remove stored file %s", key, exc_info=True)
