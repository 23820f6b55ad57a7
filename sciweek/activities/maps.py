"""An activity's place in Chinese map apps. Pure functions, no request, no database.

Coordinates are stored as WGS-84 (GPS; what iCalendar's GEO property means, RFC 5545
3.8.1.6). Maps published in mainland China use shifted datums: Amap (高德) GCJ-02, Baidu
BD-09. A WGS-84 point drawn unconverted on those maps lands a few hundred metres off, so the
links below convert first. Outside China the datums agree and nothing is shifted.
"""

from __future__ import annotations

import math
from urllib.parse import urlencode

# GCJ-02 is defined on the Krasovsky 1940 ellipsoid.
_A = 6378245.0
_EE = 0.00669342162296594323
_BD_FACTOR = math.pi * 3000.0 / 180.0


def outside_china(lng: float, lat: float) -> bool:
    """The bounding box in which GCJ-02 shifts points (a rough one, as map SDKs use)."""
    return not (72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _shift_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _shift_lng(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    """(lng, lat) from WGS-84 to GCJ-02 (Amap, Tencent maps)."""
    if outside_china(lng, lat):
        return lng, lat
    d_lat = _shift_lat(lng - 105.0, lat - 35.0)
    d_lng = _shift_lng(lng - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lng = (d_lng * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lng + d_lng, lat + d_lat


def gcj02_to_bd09(lng: float, lat: float) -> tuple[float, float]:
    """(lng, lat) from GCJ-02 to BD-09 (Baidu)."""
    z = math.sqrt(lng * lng + lat * lat) + 0.00002 * math.sin(lat * _BD_FACTOR)
    theta = math.atan2(lat, lng) + 0.000003 * math.cos(lng * _BD_FACTOR)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def wgs84_to_bd09(lng: float, lat: float) -> tuple[float, float]:
    """(lng, lat) from WGS-84 to BD-09: through GCJ-02, as Baidu defines it."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lng, lat))


def amap_url(lat: float, lng: float, name: str) -> str:
    """Amap's marker URI: opens the app if installed, else its mobile web map."""
    g_lng, g_lat = wgs84_to_gcj02(lng, lat)
    query = {
        "position": f"{g_lng:.6f},{g_lat:.6f}",
        "name": name,
        "coordinate": "gaode",
        "callnative": "1",
        "src": "sciweek",
    }
    return "https://uri.amap.com/marker?" + urlencode(query)


def baidu_url(lat: float, lng: float, name: str) -> str:
    """Baidu Map's marker URI (web, which offers to open the app)."""
    b_lng, b_lat = wgs84_to_bd09(lng, lat)
    query = {
        "location": f"{b_lat:.6f},{b_lng:.6f}",
        "title": name,
        "content": name,
        "coord_type": "bd09ll",
        "output": "html",
        "src": "webapp.sciweek.sciweek",
    }
    return "https://api.map.baidu.com/marker?" + urlencode(query)
