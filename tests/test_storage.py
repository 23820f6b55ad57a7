"""The file storage: the same cases against the local folder and a real S3 server (moto),
path traversal refused, and the roster uploads kept in it on both backends."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from sciweek import create_app
from sciweek.storage import (
    InvalidKey,
    LocalStorage,
    NotStored,
    S3Storage,
    get_storage,
    storage_from_config,
)
from sciweek.training.roster import parse_roster
from sciweek.training.uploads import (
    MAX_AGE_SECONDS,
    PREFIX,
    load_upload,
    remove_stale_uploads,
    save_upload,
    upload_key,
)

from .storage_support import bucket_keys, s3_endpoint, s3_settings  # noqa: F401 - fixtures

ROSTER_CSV = (
    "序号,姓名,性别,出生年月,职务,所属镇街,村/社区,手机号\n"
    "1,张三,男,1980.01,书记,城关镇,城关一村,13800138000\n"
)


@pytest.fixture(params=["local", "s3"])
def storage_config(request, tmp_path) -> dict:
    """Settings for one backend: a folder, or a new bucket on the moto server."""
    if request.param == "s3":
        return request.getfixturevalue("s3_settings")
    return {"SCIWEEK_STORAGE_BACKEND": "local", "SCIWEEK_STORAGE_PATH": str(tmp_path / "files")}


@pytest.fixture
def storage(storage_config):
    return storage_from_config(storage_config)


@pytest.fixture
def storage_app(storage_config, tmp_path, monkeypatch):
    """An application using that backend (no database needed for the storage itself)."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
            **storage_config,
        }
    )
    with app.app_context():
        yield app


def test_the_configured_backend_is_used(storage_config, storage):
    expected = S3Storage if storage_config["SCIWEEK_STORAGE_BACKEND"] == "s3" else LocalStorage
    assert isinstance(storage, expected)


def test_put_get_open_exists_delete(storage):
    key = "summaries/7/photo.jpg"
    assert not storage.exists(key)
    storage.put(key, b"\xff\xd8first", "image/jpeg")
    assert storage.exists(key)
    assert storage.get(key) == b"\xff\xd8first"
    storage.put(key, b"\xff\xd8second", "image/jpeg")  # replaced
    stream = storage.open(key)
    try:
        assert stream.read(3) == b"\xff\xd8s"
        assert stream.read() == b"econd"
    finally:
        stream.close()
    storage.delete(key)
    assert not storage.exists(key)
    storage.delete(key)  # again: nothing to do, no error
    with pytest.raises(NotStored):
        storage.get(key)
    with pytest.raises(NotStored):
        storage.open(key)


def test_list_gives_the_files_under_a_prefix_with_size_and_time(storage):
    before = datetime.now(UTC) - timedelta(minutes=5)
    storage.put("roster_uploads/a.json", b"{}")
    storage.put("roster_uploads/b.json", b"[1, 2]")
    storage.put("summaries/1/c.jpg", b"jpeg")
    listed = {f.key: f for f in storage.list("roster_uploads/")}
    assert sorted(listed) == ["roster_uploads/a.json", "roster_uploads/b.json"]
    assert listed["roster_uploads/b.json"].size == 6
    assert all(
        before < f.modified_at <= datetime.now(UTC) + timedelta(minutes=5) for f in listed.values()
    )
    assert [f.key for f in storage.list("nothing-here/")] == []


def test_binary_content_is_kept_byte_for_byte(storage):
    data = bytes(range(256)) * 4096  # 1 MB, every byte value
    storage.put("summaries/2/all-bytes.jpg", data)
    assert storage.get("summaries/2/all-bytes.jpg") == data


BAD_KEYS = [
    "",
    "../secret",
    "summaries/../../etc/passwd",
    "summaries/..",
    "/etc/passwd",
    "summaries//x.jpg",
    "summaries/./x.jpg",
    ".hidden",
    "summaries\\..\\x.jpg",
    "summaries/x.jpg\x00.png",
    "summaries/ｘ.jpg",
    "summaries/x y.jpg",
    "a" * 200,
]


@pytest.mark.parametrize("token", ["_jHqWCeoGWvyrBES3pcSWkMKQqE4wWlt", "-8Bavoz8TYZ7AyEEuTR_lc"])
def test_a_roster_upload_token_may_begin_with_any_url_safe_character(storage, token):
    """``secrets.token_urlsafe`` begins one token in 32 with ``_`` or ``-``: such an
    upload was refused as an invalid key, failing the import at random."""
    key = upload_key(token)
    storage.put(key, b"{}")
    assert storage.get(key) == b"{}"


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_keys_that_could_escape_are_refused(storage, key):
    for action in (
        lambda: storage.put(key, b"x"),
        lambda: storage.get(key),
        lambda: storage.open(key),
        lambda: storage.exists(key),
        lambda: storage.delete(key),
    ):
        with pytest.raises(InvalidKey):
            action()


def test_local_storage_writes_nothing_outside_its_folder(tmp_path):
    root = tmp_path / "files"
    storage = LocalStorage(root)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    for key in ("../outside.txt", "x/../../outside.txt"):
        with pytest.raises(InvalidKey):
            storage.put(key, b"overwritten")
        with pytest.raises(InvalidKey):
            storage.delete(key)
    assert outside.read_text() == "keep me"


def test_local_storage_does_not_follow_a_link_out_of_its_folder(tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "secret_key").write_text("s3cret")
    os.symlink(tmp_path / "private", root / "linked")
    storage = LocalStorage(root)
    with pytest.raises(InvalidKey):
        storage.get("linked/secret_key")
    with pytest.raises(InvalidKey):
        storage.put("linked/new.txt", b"x")
    assert not (tmp_path / "private" / "new.txt").exists()


def test_local_storage_leaves_no_partial_file_when_writing_fails(tmp_path, monkeypatch):
    storage = LocalStorage(tmp_path / "files")
    storage.put("summaries/1/a.jpg", b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        storage.put("summaries/1/a.jpg", b"new")
    monkeypatch.undo()
    assert storage.get("summaries/1/a.jpg") == b"old"
    assert sorted(p.name for p in (tmp_path / "files" / "summaries" / "1").iterdir()) == ["a.jpg"]


def test_s3_keys_live_under_the_prefix_in_the_bucket(s3_settings):  # noqa: F811
    storage = storage_from_config(s3_settings)
    storage.put("summaries/3/x.jpg", b"x")
    assert bucket_keys(s3_settings) == ["site-a/summaries/3/x.jpg"]
    assert [f.key for f in storage.list("summaries/")] == ["summaries/3/x.jpg"]


# --- roster uploads in the storage ----------------------------------------------------------


def _parsed():
    return parse_roster("花名册.csv", ROSTER_CSV.encode("utf-8"))


def test_roster_upload_is_kept_in_the_storage_for_its_user_only(storage_app):
    token = save_upload(_parsed(), user_id=5)
    storage = get_storage()
    assert storage.exists(upload_key(token))
    assert [f.key for f in storage.list(PREFIX)] == [upload_key(token)]
    loaded = load_upload(token, user_id=5)
    assert loaded is not None
    assert [r.name for r in loaded.rows] == ["张三"]
    assert load_upload(token, user_id=6) is None  # someone else's token
    assert load_upload("../../secret_key", user_id=5) is None
    assert load_upload("x" * 30, user_id=5) is None  # never stored


def test_an_expired_roster_upload_is_refused_and_removed(storage_app):
    token = save_upload(_parsed(), user_id=5)
    storage = get_storage()
    payload = json.loads(storage.get(upload_key(token)))
    payload["saved_at"] = time.time() - MAX_AGE_SECONDS - 1
    storage.put(upload_key(token), json.dumps(payload).encode())
    assert load_upload(token, user_id=5) is None
    assert not storage.exists(upload_key(token))


def test_stale_roster_uploads_are_cleaned_up_on_both_backends(storage_app):
    first = save_upload(_parsed(), user_id=5)
    second = save_upload(_parsed(), user_id=5)
    storage = get_storage()
    assert remove_stale_uploads(storage) == 0  # both fresh
    assert storage.exists(upload_key(first))
    assert storage.exists(upload_key(second))
    # Two hours and a minute later, the next upload removes both.
    assert remove_stale_uploads(storage, now=time.time() + MAX_AGE_SECONDS + 60) == 2
    assert list(storage.list(PREFIX)) == []
