"""The JSON of every answer is written by orjson, in the bytes ``json.dumps`` wrote before."""

from __future__ import annotations

import json

import pytest

from wxhub.api.listing import json_response


def _before(body: object) -> bytes:
    return (json.dumps(body, separators=(",", ":")) + "\n").encode()


@pytest.mark.parametrize(
    "value",
    [
        # Every value a day's tenths, a rounded yearly mean or total, and a count can take.
        *(t / 10 for t in range(-900, 600, 7)),
        *(p / 100 for p in range(0, 300_000, 997)),
        15.33,
        -0.0,
        0.1 + 0.2,
        10865,
        None,
        True,
    ],
)
def test_numbers_print_as_the_standard_encoder_prints_them(value: object) -> None:
    body = {"data": [{"station_id": "USC00110072", "value": value}], "total": 1}
    assert json_response(body).get_data() == _before(body)


def test_a_body_beyond_ascii_keeps_its_unicode_escapes() -> None:
    body = {"name": "ZÜRICH/KLOTEN", "city": "São Paulo", "mark": "°"}
    data = json_response(body).get_data()
    assert data == _before(body)
    assert b"\\u00dc" in data
    assert data.isascii()


def test_the_answer_is_json_with_a_final_newline() -> None:
    response = json_response({"a": [1, 2.5, None]})
    assert response.mimetype == "application/json"
    assert response.get_data() == b'{"a":[1,2.5,null]}\n'
