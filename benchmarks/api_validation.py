"""What validating the scan's JSON body costs, in process (no server, no database).

    .venv/bin/python benchmarks/api_validation.py

Times, per body, in microseconds (best of 5 runs of N validations):
- ``loads_json + handwritten``: the route before pydantic, body text to checked values;
- ``handwritten``: the checks the scan route made before pydantic (``_int_field`` /
  ``_str_field`` as of main 5e5c8d1, copied below);
- ``schema``: ``ScanBody.model_validate`` (sciweek/checkin/schemas.py);
- ``json_body``: reading and validating the body as the route does (``sciweek.api.json_body``
  inside a request context: JSON parsing with the depth bound, then the schema);
- ``invalid``: a body with four bad fields, to the ``ApiError`` with Chinese messages.
"""

from __future__ import annotations

import contextlib
import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sciweek import create_app  # noqa: E402
from sciweek.api import ApiError, json_body  # noqa: E402
from sciweek.checkin.schemas import ScanBody  # noqa: E402
from sciweek.inputs import loads_json  # noqa: E402

N = 20_000
BODY = {
    "code": "https://sciweek.example.cn/t/3q7XkP2mQ9vR4sT8wY1zA5bC6dE0fG2h",
    "activity_id": 12,
    "session_id": 34,
    "nonce": "d7-5f0c-4a1b-9e2d",
    "scanned_at": "2026-05-17T01:02:03Z",
}
BAD = {"code": "  ", "activity_id": "12", "session_id": -1, "nonce": 5}


def _int_field(data, name, *, required):
    value = data.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise ValueError(name)
    return value


def _str_field(data, name, *, max_length, required):
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError(name)
    if len(value) > max_length:
        raise ValueError(name)
    if name != "code" and not value.isprintable():
        raise ValueError(name)
    return value


def handwritten(data=BODY):
    _str_field(data, "code", max_length=2000, required=True)
    _int_field(data, "activity_id", required=True)
    _int_field(data, "session_id", required=False)
    _str_field(data, "nonce", max_length=64, required=False)
    data.get("scanned_at")  # then parsed by services.parse_scan_time


def best_us(stmt, number=N) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6


def main() -> None:
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True})
    raw = json.dumps(BODY).encode()
    print(f"python {sys.version.split()[0]}, N={N}, best of 5, µs per body")
    print(f"handwritten checks      {best_us(handwritten):6.2f}")
    print(f"loads_json + handwritten{best_us(lambda: handwritten(loads_json(raw))):6.2f}")
    print(f"ScanBody.model_validate {best_us(lambda: ScanBody.model_validate(BODY)):6.2f}")
    with app.test_request_context("/api/v1/checkins", method="POST", data=raw):

        def read_and_validate():
            return json_body(ScanBody)

        print(f"json_body(ScanBody)     {best_us(read_and_validate):6.2f}")

    with app.test_request_context("/api/v1/checkins", method="POST", data=json.dumps(BAD)):

        def refuse():
            with contextlib.suppress(ApiError):
                json_body(ScanBody)

        print(f"invalid body -> 400     {best_us(refuse, number=N // 10):6.2f}")


if __name__ == "__main__":
    main()
