"""Coordinates stored as WGS-84, shifted for Chinese map apps (GCJ-02 for Amap, BD-09 for
Baidu). The reference points are those the gcoord library publishes in its tests."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from sciweek.activities.maps import (
    amap_url,
    baidu_url,
    gcj02_to_bd09,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

from .conftest import local


@pytest.mark.parametrize(
    ("convert", "point", "expected"),
    [
        (wgs84_to_gcj02, (123, 45), (123.00607541, 45.00197815)),
        (wgs84_to_bd09, (123, 45), (123.0124491, 45.0083293)),
        (gcj02_to_bd09, (123, 45), (123.00636499, 45.00636899)),
        # GCJ-02 (123, 45) is WGS-84 (122.99395597, 44.99804071): the forward shift agrees.
        (wgs84_to_gcj02, (122.99395597, 44.99804071), (123, 45)),
    ],
)
def test_known_reference_points(convert, point, expected):
    lng, lat = convert(*point)
    assert lng == pytest.approx(expected[0], abs=2e-5)
    assert lat == pytest.approx(expected[1], abs=2e-5)


def test_points_outside_china_are_not_shifted():
    assert wgs84_to_gcj02(2.3522, 48.8566) == (2.3522, 48.8566)  # Paris
    assert wgs84_to_gcj02(183, 45) == (183, 45)


def test_the_shift_is_hundreds_of_metres_not_kilometres():
    lng, lat = wgs84_to_gcj02(116.397, 39.909)  # Tian'anmen
    assert 0.001 < abs(lng - 116.397) < 0.01
    assert 0.0005 < abs(lat - 39.909) < 0.01


def test_map_links_carry_the_converted_point_and_the_name():
    amap = parse_qs(urlsplit(amap_url(45, 123, "文化礼堂")).query)
    assert amap["position"] == ["123.006075,45.001978"]
    assert amap["coordinate"] == ["gaode"]
    assert amap["name"] == ["文化礼堂"]
    baidu = parse_qs(urlsplit(baidu_url(45, 123, "文化礼堂")).query)
    assert baidu["location"] == ["45.008329,123.012449"]
    assert baidu["coord_type"] == ["bd09ll"]


def test_activity_page_links_to_map_apps_only_with_coordinates(client, make):
    when = [(local(2099, 5, 17, 9, 30), local(2099, 5, 17, 11))]
    placed = make.activity(
        venue="青山村文化礼堂", latitude=30.2741, longitude=120.1551, sessions=when
    )
    unplaced = make.activity(sessions=when)
    page = client.get(f"/activities/{placed.id}").get_data(as_text=True)
    assert "https://uri.amap.com/marker?" in page
    assert "https://api.map.baidu.com/marker?" in page
    assert "高德地图" in page
    assert "百度地图" in page
    assert "uri.amap.com" not in client.get(f"/activities/{unplaced.id}").get_data(as_text=True)
