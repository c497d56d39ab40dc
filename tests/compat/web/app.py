"""Serialisation and validation libraries with compiled cores: each one's compiled path is asserted."""

import datetime
import uuid

import charset_normalizer
import markupsafe
import markupsafe._speedups
import msgpack
import orjson
import pydantic
import yaml

GREETING = "Grüße aus Köln, schöne Straße"


class Order(pydantic.BaseModel):
    id: int
    items: list[str]
    placed: datetime.date


def handler(event, context):
    order = Order.model_validate({"id": "7", "items": ["a", "b"], "placed": "2026-11-30"})
    try:
        Order.model_validate({"id": "x", "items": [], "placed": "2026-11-30"})
        rejected = None
    except pydantic.ValidationError as exc:
        rejected = exc.errors()[0]["type"]
    packed = msgpack.packb({"n": [1, 2, 3], "s": "é"})
    detected = charset_normalizer.from_bytes(GREETING.encode("cp1252")).best()
    return {
        "pydantic": [order.id, order.items, order.placed.isoformat(), rejected],
        "orjson": orjson.dumps(
            {"when": datetime.datetime(2026, 11, 30, 12, 0), "id": uuid.UUID(int=1)},
            option=orjson.OPT_SORT_KEYS,
        ).decode(),
        "yaml": yaml.load("a: [1, 2]\nb: {c: true}\n", Loader=yaml.CSafeLoader),
        "markupsafe": str(markupsafe.escape("<a href='x'>&</a>")),
        "markupsafe_speedups": markupsafe._speedups.__file__.endswith(".so"),
        "msgpack": [len(packed), msgpack.unpackb(packed)],
        "msgpack_c": msgpack.Packer.__module__,
        "charset_normalizer": str(detected) if detected else None,
        "charset_normalizer_compiled": charset_normalizer.md.__file__.endswith(".so"),
    }
