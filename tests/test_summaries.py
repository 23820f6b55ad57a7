"""Activity summaries (活动总结): the organizer records counts, experts, a text and photos
after the activity; photos are cleaned (upright, no EXIF, resized), refused with a message
when they are not photos, and kept in the file storage without orphans."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from sciweek.extensions import db
from sciweek.models import ActivitySummary, SummaryExpert, SummaryPhoto, utcnow
from sciweek.storage import get_storage
from sciweek.summaries.photos import (
    MAX_EDGE,
    MAX_PHOTO_BYTES,
    THUMBNAIL_EDGE,
    PhotoRefused,
    ProcessedPhoto,
    process_photo,
)
from sciweek.summaries.services import (
    SummaryData,
    SummaryRefused,
    delete_photo,
    move_photo,
    save_summary,
    thumbnail_key,
)
from sciweek.transactions import all_or_nothing

from .photo_files import GPS_IFD, ORIENTATION, photo, png_claiming, read_image, transparent_png
from .storage_support import bucket_keys, s3_endpoint, s3_settings  # noqa: F401 - fixtures

# --- photos: pure processing ------------------------------------------------------------------


def test_a_phone_photo_is_resized_and_loses_its_exif_and_location():
    original = photo((3000, 2000))
    assert read_image(original).getexif().get_ifd(GPS_IFD)  # the source has a location
    kept = process_photo(original, "IMG_0001.JPG")
    image = read_image(kept.jpeg)
    assert image.format == "JPEG"
    assert (image.width, image.height) == (kept.width, kept.height) == (MAX_EDGE, 1365)
    assert dict(image.getexif()) == {}
    assert "exif" not in image.info
    thumb = read_image(kept.thumbnail)
    assert max(thumb.size) == THUMBNAIL_EDGE


def test_the_exif_orientation_is_applied_before_it_is_dropped():
    # Stored landscape, tagged "rotate 90° clockwise to view" (6): kept portrait.
    kept = process_photo(photo((400, 300), orientation=6))
    image = read_image(kept.jpeg)
    assert image.size == (300, 400)
    assert ORIENTATION not in image.getexif()
    # The red corner (top left as stored) is now at the top right.
    assert is_red(image.getpixel((290, 10)))
    assert not is_red(image.getpixel((10, 10)))
    assert not is_red(image.getpixel((290, 390)))


def is_red(pixel) -> bool:
    red, green, blue = pixel
    return red > 150 and green < 80 and blue < 80


def test_a_small_photo_is_not_enlarged():
    kept = process_photo(photo((640, 480)))
    assert (kept.width, kept.height) == (640, 480)


def test_png_with_transparency_becomes_a_jpeg_on_white():
    kept = process_photo(transparent_png())
    image = read_image(kept.jpeg)
    assert image.format == "JPEG"
    assert image.getpixel((10, 10)) == pytest.approx((255, 255, 255), abs=3)


def test_heic_from_an_iphone_becomes_a_jpeg_without_location():
    heic = photo((1200, 900), fmt="HEIF")
    assert read_image(heic).format == "HEIF"
    kept = process_photo(heic, "IMG_0002.HEIC")
    image = read_image(kept.jpeg)
    assert image.format == "JPEG"
    assert image.size == (1200, 900)
    assert dict(image.getexif()) == {}


REFUSED = {
    "empty": (b"", "空文件"),
    "text": (b"name,phone\n\xe5\xbc\xa0\xe4\xb8\x89,13800138000\n", "不是可识别的照片"),
    "pdf": (b"%PDF-1.4\n1 0 obj<<>>endobj\n", "不是可识别的照片"),
    "gif": (None, "不是可识别的照片"),
    "too large": (b"\xff\xd8\xff\xe0" + b"\x00" * MAX_PHOTO_BYTES, "超过 10 MB"),
    # 9000 x 9000: over our own bound, under Pillow's warning.
    "many pixels": (png_claiming(9000, 9000), "像素过多"),
    # 10000 x 10000: Pillow's DecompressionBombWarning; 30000 x 30000: its error.
    "bomb warning": (png_claiming(10_000, 10_000), "像素过多"),
    "bomb": (png_claiming(30_000, 30_000), "像素过多"),
    "damaged": (png_claiming(100, 100), "已损坏"),
    "truncated": (None, "已损坏"),
}


def _refused_data(kind: str) -> bytes:
    data, _message = REFUSED[kind]
    if kind == "gif":
        out = io.BytesIO()
        Image.new("RGB", (10, 10)).save(out, "GIF")
        return out.getvalue()
    if kind == "truncated":
        whole = photo((800, 600))
        return whole[: len(whole) // 2]
    return data


@pytest.mark.parametrize("kind", list(REFUSED))
def test_what_is_not_a_photo_is_refused_with_a_message(kind):
    with pytest.raises(PhotoRefused, match=REFUSED[kind][1]) as refused:
        process_photo(_refused_data(kind), "活动.jpg")
    assert "活动.jpg" in str(refused.value)


# --- the page -----------------------------------------------------------------------------------


def held_activity(make, organizer, **fields):
    """An outreach activity of ``organizer``'s department that began yesterday."""
    starts = utcnow() - timedelta(days=1)
    return make.activity(
        departments=[organizer.department],
        sessions=[(starts, starts + timedelta(hours=3))],
        **fields,
    )


def form_data(**changes) -> dict:
    data = {
        "people_reached": "320",
        "materials_distributed": "1500",
        "consultations": "86",
        "experts-0-name": "王建国",
        "experts-0-unit": "区农业农村局",
        "experts-0-specialty": "果树栽培",
        "experts-1-name": "李秀英",
        "experts-1-unit": "区人民医院",
        "experts-1-specialty": "慢病防治",
        "experts-2-name": "",
        "text": "在村文化礼堂开展科技下乡，现场咨询踊跃。\n发放果树管理手册。",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def with_photos(data: dict, *files: tuple[bytes, str]) -> dict:
    return {**data, "photos": [(io.BytesIO(content), name) for content, name in files]}


def post_summary(client, activity, data):
    return client.post(
        f"/manage/activities/{activity.id}/summary/edit",
        data=data,
        content_type="multipart/form-data",
    )


def errors(response) -> list[str]:
    html = response.get_data(as_text=True)
    return re.findall(r'<p class="error[^"]*" role="alert">(.*?)</p>', html, re.S)


def summaries_count() -> int:
    return db.session.scalar(select(func.count(ActivitySummary.id)))


def stored_files() -> list[str]:
    return sorted(f.key for f in get_storage().list("summaries/"))


@pytest.fixture
def organizer(make):
    return make.user("organizer")


@pytest.fixture
def logged_in(client, auth, organizer):
    auth.login(organizer)
    return client


def test_organizer_records_a_summary_with_experts_and_a_photo(app, logged_in, make, organizer):
    activity = held_activity(make, organizer)
    page = logged_in.get(f"/manage/activities/{activity.id}/edit").get_data(as_text=True)
    assert f"/manage/activities/{activity.id}/summary" in page  # linked from the activity

    response = post_summary(
        logged_in, activity, with_photos(form_data(), (photo((3000, 2000)), "IMG_1.JPG"))
    )
    assert response.status_code == 302, errors(response)
    summary = db.session.scalar(select(ActivitySummary))
    assert (summary.people_reached, summary.materials_distributed, summary.consultations) == (
        320,
        1500,
        86,
    )
    assert [(e.name, e.unit, e.field) for e in summary.experts] == [
        ("王建国", "区农业农村局", "果树栽培"),
        ("李秀英", "区人民医院", "慢病防治"),
    ]
    assert summary.updated_by_id == organizer.id
    (kept,) = summary.photos
    assert re.fullmatch(rf"summaries/{summary.id}/[0-9a-f]{{32}}\.jpg", kept.storage_key)
    assert stored_files() == sorted([kept.storage_key, thumbnail_key(kept.storage_key)])

    html = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert '<dd id="people-reached">320</dd>' in html
    assert "区人民医院" in html
    assert "发放果树管理手册" in html
    full_url, thumb_url = _photo_urls(html)
    with logged_in.get(full_url) as full:
        assert full.status_code == 200
        assert full.mimetype == "image/jpeg"
        assert "private" in full.headers["Cache-Control"]
        image = read_image(full.get_data())
    assert max(image.size) == MAX_EDGE
    assert image.getexif().get_ifd(GPS_IFD) == {}
    assert max(read_image(fetch(logged_in, thumb_url)).size) == THUMBNAIL_EDGE


def fetch(client, url: str) -> bytes:
    """A photo's bytes (the streamed file closed, as a WSGI server closes it)."""
    with client.get(url) as response:
        assert response.status_code == 200
        return response.get_data()


def _photo_urls(html: str) -> tuple[str, str]:
    full = re.search(r'<a href="(/manage/summary-photos/\d+/[0-9a-f]{32}\.jpg)"', html).group(1)
    thumb = re.search(r'<img src="(/manage/summary-photos/\d+/[0-9a-f]{32}\.thumb\.jpg)"', html)
    return full, thumb.group(1)


def test_saving_again_corrects_the_summary_and_keeps_its_photos(logged_in, make, organizer):
    activity = held_activity(make, organizer)
    post_summary(logged_in, activity, with_photos(form_data(), (photo((800, 600)), "a.jpg")))
    edit_page = logged_in.get(f"/manage/activities/{activity.id}/summary/edit")
    assert 'value="王建国"' in edit_page.get_data(as_text=True)
    response = post_summary(
        logged_in,
        activity,
        form_data(
            people_reached="400",
            **{"experts-1-name": "", "experts-1-unit": "", "experts-1-specialty": ""},
        ),
    )
    assert response.status_code == 302, errors(response)
    summary = db.session.scalar(select(ActivitySummary))
    assert summary.people_reached == 400
    assert [e.name for e in summary.experts] == ["王建国"]
    assert db.session.scalar(select(func.count(SummaryExpert.id))) == 1
    assert len(summary.photos) == 1


def test_no_summary_before_the_first_session_has_begun(logged_in, make, organizer):
    starts = utcnow() + timedelta(days=2)
    activity = make.activity(
        departments=[organizer.department], sessions=[(starts, starts + timedelta(hours=2))]
    )
    page = logged_in.get(f"/manage/activities/{activity.id}/summary/edit")
    assert "活动开始后才能填写" in page.get_data(as_text=True)
    assert '<form method="post" enctype' not in page.get_data(as_text=True)
    response = post_summary(logged_in, activity, form_data())
    assert response.status_code == 200
    assert summaries_count() == 0
    assert "活动开始后才能填写" in logged_in.get(
        f"/manage/activities/{activity.id}/summary"
    ).get_data(as_text=True)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "0 到 1000000"),
        ("1000001", "0 到 1000000"),
        ("99999999999999999999", "数值超出范围"),
        ("١٢", "只用数字 0-9"),
        ("12.5", "只用数字 0-9"),
        ("abc", "只用数字 0-9"),
        ("", "没有请填 0"),
        ("1\x002", "控制字符"),
    ],
)
def test_counts_must_be_whole_numbers_within_bounds(logged_in, make, organizer, value, message):
    activity = held_activity(make, organizer)
    response = post_summary(
        logged_in,
        activity,
        with_photos(form_data(people_reached=value), (photo((640, 480)), "a.jpg")),
    )
    assert response.status_code == 200
    assert any(message in e for e in errors(response)), errors(response)
    assert len(errors(response)) == 1  # one message for the one field
    assert summaries_count() == 0
    assert stored_files() == []


def test_full_width_digits_count_as_digits(logged_in, make, organizer):
    activity = held_activity(make, organizer)
    response = post_summary(
        logged_in, activity, form_data(people_reached="１２０", consultations=" ８ ")
    )
    assert response.status_code == 302, errors(response)
    summary = db.session.scalar(select(ActivitySummary))
    assert (summary.people_reached, summary.consultations) == (120, 8)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"text": "现场\x00咨询"}, "控制字符"),
        ({"text": "长" * 5001}, "最多 5000 字"),
        ({"experts-2-unit": "区科协"}, "请填写专家姓名"),
        ({"experts-0-name": "王" * 65}, "64"),
    ],
)
def test_bad_text_and_experts_are_refused_beside_the_field(
    logged_in, make, organizer, changes, message
):
    activity = held_activity(make, organizer)
    response = post_summary(logged_in, activity, form_data(**changes))
    assert response.status_code == 200
    assert any(message in e for e in errors(response)), errors(response)
    assert summaries_count() == 0


def test_a_refused_photo_saves_nothing_and_leaves_no_file(logged_in, make, organizer):
    activity = held_activity(make, organizer)
    response = post_summary(
        logged_in,
        activity,
        with_photos(
            form_data(),
            (photo((800, 600)), "good.jpg"),
            (b"not a photo at all", "bad.jpg"),
            (png_claiming(30_000, 30_000), "bomb.png"),
        ),
    )
    assert response.status_code == 200
    messages = errors(response)
    assert any("“bad.jpg”不是可识别的照片" in m for m in messages), messages
    assert any("“bomb.png”像素过多" in m for m in messages), messages
    assert summaries_count() == 0
    assert stored_files() == []


def test_a_photo_over_10_mb_is_refused(logged_in, make, organizer):
    activity = held_activity(make, organizer)
    big = b"\xff\xd8\xff\xe0" + b"\x00" * MAX_PHOTO_BYTES
    response = post_summary(logged_in, activity, with_photos(form_data(), (big, "big.jpg")))
    assert response.status_code == 200
    assert any("超过 10 MB" in m for m in errors(response)), errors(response)
    assert summaries_count() == 0


def test_nine_photos_at_once_then_the_tenth_is_refused(logged_in, make, organizer):
    activity = held_activity(make, organizer)
    nine = [(photo((320, 240), gps=False), f"p{n}.jpg") for n in range(9)]
    response = post_summary(logged_in, activity, with_photos(form_data(), *nine))
    assert response.status_code == 302, errors(response)
    assert db.session.scalar(select(func.count(SummaryPhoto.id))) == 9

    response = post_summary(
        logged_in, activity, with_photos(form_data(), (photo((320, 240)), "tenth.jpg"))
    )
    assert response.status_code == 200
    assert any("最多 9 张照片：已有 9 张，本次最多还能添加 0 张" in m for m in errors(response))
    assert db.session.scalar(select(func.count(SummaryPhoto.id))) == 9
    assert len(stored_files()) == 18


def test_ten_photos_in_one_upload_are_refused(logged_in, make, organizer):
    activity = held_activity(make, organizer)
    ten = [(photo((200, 150), gps=False), f"p{n}.jpg") for n in range(10)]
    response = post_summary(logged_in, activity, with_photos(form_data(), *ten))
    assert response.status_code == 200
    assert any("本次最多还能添加 9 张" in m for m in errors(response))
    assert summaries_count() == 0
    assert stored_files() == []


def test_photos_can_be_reordered_and_deleted(logged_in, make, organizer):
    activity = held_activity(make, organizer)
    files = [(photo((200 + n, 150), gps=False), f"p{n}.jpg") for n in range(3)]
    post_summary(logged_in, activity, with_photos(form_data(), *files))

    def order():
        db.session.expire_all()
        return [
            p.width
            for p in db.session.scalars(select(SummaryPhoto).order_by(SummaryPhoto.position))
        ]

    assert order() == [200, 201, 202]
    last = db.session.scalar(select(SummaryPhoto).where(SummaryPhoto.position == 2))
    response = logged_in.post(f"/manage/summary-photos/{last.id}/move/earlier")
    assert response.status_code == 302
    assert order() == [200, 202, 201]
    first = db.session.scalar(select(SummaryPhoto).where(SummaryPhoto.position == 0))
    assert logged_in.post(f"/manage/summary-photos/{first.id}/move/earlier").status_code == 302
    assert order() == [200, 202, 201]  # already first
    assert logged_in.post(f"/manage/summary-photos/{first.id}/move/sideways").status_code == 400

    doomed = db.session.scalar(select(SummaryPhoto).where(SummaryPhoto.position == 0))
    doomed_keys = [doomed.storage_key, thumbnail_key(doomed.storage_key)]
    assert logged_in.post(f"/manage/summary-photos/{doomed.id}/delete").status_code == 302
    assert order() == [202, 201]
    assert [
        p.position for p in db.session.scalars(select(SummaryPhoto).order_by(SummaryPhoto.position))
    ] == [0, 1]
    assert not any(key in stored_files() for key in doomed_keys)
    assert len(stored_files()) == 4
    # And the next photo goes at the end.
    post_summary(logged_in, activity, with_photos(form_data(), (photo((250, 150)), "new.jpg")))
    assert order() == [202, 201, 250]


def test_other_departments_organizers_get_403(client, auth, make, organizer):
    activity = held_activity(make, organizer)
    auth.login(organizer)
    post_summary(client, activity, with_photos(form_data(), (photo((320, 240)), "a.jpg")))
    photo_row = db.session.scalar(select(SummaryPhoto))
    name = photo_row.storage_key.rsplit("/", 1)[1]
    auth.logout()
    auth.login(make.user("organizer"))
    for method, url in [
        ("GET", f"/manage/activities/{activity.id}/summary"),
        ("GET", f"/manage/activities/{activity.id}/summary/edit"),
        ("POST", f"/manage/activities/{activity.id}/summary/edit"),
        ("GET", f"/manage/summary-photos/{photo_row.id}/{name}"),
        ("POST", f"/manage/summary-photos/{photo_row.id}/delete"),
        ("POST", f"/manage/summary-photos/{photo_row.id}/move/later"),
    ]:
        assert client.open(url, method=method).status_code == 403, (method, url)
    auth.logout()
    auth.login(make.user("admin"))
    assert fetch(client, f"/manage/summary-photos/{photo_row.id}/{name}")
    # Only the photo's own file names are served.
    assert client.get(f"/manage/summary-photos/{photo_row.id}/secret_key").status_code == 404


# --- one transaction, no orphan files -----------------------------------------------------------


def _data() -> SummaryData:
    return SummaryData(people_reached=10, materials_distributed=5, consultations=2)


def test_a_failed_flush_removes_the_files_it_wrote(app, make, organizer):
    activity = held_activity(make, organizer)
    good = process_photo(photo((320, 240)))
    broken = ProcessedPhoto(jpeg=good.jpeg, thumbnail=good.thumbnail, width=None, height=240)
    with pytest.raises(Exception, match="(?i)null"), all_or_nothing():
        save_summary(activity, _data(), [good, broken], organizer, get_storage(), utcnow())
    db.session.rollback()
    assert summaries_count() == 0
    assert stored_files() == []


def test_a_rolled_back_request_removes_the_files_it_wrote(app, make, organizer):
    activity = held_activity(make, organizer)
    good = process_photo(photo((320, 240)))
    save_summary(activity, _data(), [good], organizer, get_storage(), utcnow())
    assert len(stored_files()) == 2  # written before the commit
    db.session.rollback()  # e.g. the request's commit failed
    assert summaries_count() == 0
    assert stored_files() == []


def test_a_committed_summary_keeps_its_files_and_a_later_rollback_does_not_touch_them(
    app, make, organizer
):
    activity = held_activity(make, organizer)
    save_summary(
        activity, _data(), [process_photo(photo((320, 240)))], organizer, get_storage(), utcnow()
    )
    db.session.commit()
    activity = db.session.get(type(activity), activity.id)
    with pytest.raises(SummaryRefused), all_or_nothing():
        save_summary(
            activity,
            _data(),
            [process_photo(photo((320, 240)))] * 9,
            organizer,
            get_storage(),
            utcnow(),
        )
    db.session.rollback()
    assert len(stored_files()) == 2


def test_a_refused_savepoint_removes_its_files_but_the_request_goes_on(app, make, organizer):
    activity = held_activity(make, organizer)
    first = held_activity(make, organizer)
    save_summary(
        first, _data(), [process_photo(photo((320, 240)))], organizer, get_storage(), utcnow()
    )
    kept = stored_files()

    def save_then_fail():
        with all_or_nothing():
            save_summary(
                activity,
                _data(),
                [process_photo(photo((320, 240)))],
                organizer,
                get_storage(),
                utcnow(),
            )
            raise RuntimeError("something after the flush failed")

    with pytest.raises(RuntimeError):
        save_then_fail()
    assert stored_files() == kept  # the savepoint's files are gone, the earlier ones stay
    db.session.commit()
    assert stored_files() == kept
    assert summaries_count() == 1


def test_a_deleted_photo_keeps_its_files_until_the_commit(app, make, organizer):
    activity = held_activity(make, organizer)
    save_summary(
        activity, _data(), [process_photo(photo((320, 240)))], organizer, get_storage(), utcnow()
    )
    db.session.commit()
    photo_row = db.session.scalar(select(SummaryPhoto))
    delete_photo(photo_row, get_storage())
    assert len(stored_files()) == 2
    db.session.rollback()  # the removal did not happen: the files stay
    assert len(stored_files()) == 2
    delete_photo(db.session.scalar(select(SummaryPhoto)), get_storage())
    db.session.commit()
    assert stored_files() == []


def test_moving_keeps_the_photo_and_its_file(app, make, organizer):
    activity = held_activity(make, organizer)
    photos = [process_photo(photo((300 + n, 200))) for n in range(2)]
    save_summary(activity, _data(), photos, organizer, get_storage(), utcnow())
    db.session.commit()
    second = db.session.scalar(select(SummaryPhoto).where(SummaryPhoto.position == 1))
    key = second.storage_key
    moved = move_photo(second, -1)
    db.session.commit()
    assert (moved.position, moved.storage_key, moved.width) == (0, key, 301)
    assert get_storage().exists(key)


# --- the same, end to end, on a real S3 server ---------------------------------------------------


def test_upload_through_http_to_s3_and_read_it_back(app, logged_in, make, organizer, s3_settings):  # noqa: F811
    app.config.update(s3_settings)
    app.extensions.pop("sciweek_storage", None)  # built again from the new settings
    activity = held_activity(make, organizer)
    response = post_summary(
        logged_in, activity, with_photos(form_data(), (photo((2500, 2500)), "IMG_9.JPG"))
    )
    assert response.status_code == 302, errors(response)
    (kept,) = db.session.scalars(select(SummaryPhoto)).all()
    assert bucket_keys(s3_settings) == sorted(
        [f"site-a/{kept.storage_key}", f"site-a/{thumbnail_key(kept.storage_key)}"]
    )
    html = logged_in.get(f"/manage/activities/{activity.id}/summary").get_data(as_text=True)
    full_url, _thumb = _photo_urls(html)
    served = fetch(logged_in, full_url)
    assert served == get_storage().get(kept.storage_key)
    image = read_image(served)
    assert image.size == (MAX_EDGE, MAX_EDGE)
    assert image.getexif().get_ifd(GPS_IFD) == {}


def test_heic_uploaded_through_the_form_is_kept_as_jpeg(logged_in, make, organizer):
    activity = held_activity(make, organizer)
    heic = photo((1600, 1200), fmt="HEIF")
    response = post_summary(logged_in, activity, with_photos(form_data(), (heic, "IMG_7.HEIC")))
    assert response.status_code == 302, errors(response)
    (kept,) = db.session.scalars(select(SummaryPhoto)).all()
    image = read_image(get_storage().get(kept.storage_key))
    assert (image.format, image.size) == ("JPEG", (1600, 1200))
    assert dict(image.getexif()) == {}


def test_the_summary_form_takes_several_large_photos_at_once_other_forms_do_not(
    app, logged_in, make, organizer
):
    """MAX_CONTENT_LENGTH (25 MB) holds everywhere but here, where 9 photos of 10 MB fit."""
    activity = held_activity(make, organizer)
    blob = b"\x00" * (9 * 1024 * 1024)
    body = with_photos(form_data(), *[(blob, f"p{n}.bin") for n in range(3)])  # 27 MB
    response = post_summary(logged_in, activity, body)
    assert response.status_code == 200  # read, and each refused beside the field
    assert sum("不是可识别的照片" in m for m in errors(response)) == 3
    elsewhere = logged_in.post(
        f"/manage/activities/{activity.id}/cancel",
        data={"reason": "x", "file": (io.BytesIO(blob * 3), "big.bin")},
        content_type="multipart/form-data",
    )
    assert elsewhere.status_code == 413


def test_summary_messages_in_english(client, auth, make, organizer):
    # The language first: the test's app context (and its cached locale) spans requests.
    client.get("/?lang=en")
    auth.login(organizer)
    logged_in = client
    activity = held_activity(make, organizer)
    response = post_summary(
        logged_in,
        activity,
        with_photos(form_data(people_reached="-3"), (b"plain text", "notes.jpg")),
    )
    messages = errors(response)
    assert "Must be a whole number from 0 to 1000000." in messages
    page = logged_in.get(f"/manage/activities/{activity.id}/summary").get_data(as_text=True)
    assert "No summary has been recorded yet." in page


@pytest.mark.parametrize("kind", ["damaged", "truncated"])
def test_a_damaged_photo_is_refused_after_a_pdf_was_printed_in_the_same_process(kind):
    """WeasyPrint, imported for the 签到表 or the assessment PDF, turns on Pillow's global
    LOAD_TRUNCATED_IMAGES: a worker that has printed once must still refuse a half photo."""
    pdf = pytest.importorskip("sciweek.pdf")
    try:
        pdf.weasyprint()
    except pdf.PdfUnavailable as exc:
        pytest.skip(f"WeasyPrint cannot load here: {exc}")
    with pytest.raises(PhotoRefused, match="已损坏"):
        process_photo(_refused_data(kind), "活动.jpg")
