"""Events in, results out: the event for the handler and the response body, as awslambdaric makes them."""

import json
import sys

from lambda_bootstrap.faults import RuntimeFault, safe_str


class _NeedsSlowPath(Exception):
    pass


def _reject(obj):
    decimal = sys.modules.get("decimal")  # not imported: obj cannot be a Decimal (and sys.path may be gone)
    if decimal is not None and isinstance(obj, decimal.Decimal):
        raise _NeedsSlowPath
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


# The C encoder for everything but Decimal; keyed by ensure_ascii.
_FAST_ENCODERS = {
    ascii_only: json.JSONEncoder(ensure_ascii=ascii_only, allow_nan=True, default=_reject).encode
    for ascii_only in (False, True)
}


def decode_event(body, content_type):
    """The event for the handler: JSON when the media type is application/json, else the raw bytes."""
    if (
        content_type != "application/json"
        and content_type.split(";", 1)[0].strip().lower() != "application/json"
    ):
        return body
    try:
        return json.loads(body)
    except Exception as exc:
        raise RuntimeFault("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % exc) from None


def encode_result(result):
    """The response body and its content type."""
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return to_json(result).encode("utf-8"), "application/json"
    except UnicodeEncodeError:  # lone surrogates cannot be UTF-8: escape them, as JSON allows
        return to_json(result, ensure_ascii=True).encode("ascii"), "application/json"
    except Exception as exc:
        raise RuntimeFault("Runtime.MarshalError", "Unable to marshal response: %s" % safe_str(exc)) from None


def to_json(obj, ensure_ascii=False):
    """JSON as awslambdaric writes it: Decimal as its exact text, NaN and Infinity allowed."""
    try:
        return _FAST_ENCODERS[ensure_ascii](obj)
    except _NeedsSlowPath:
        return "".join(_decimal_encoder(ensure_ascii)(obj, 0))


def _decimal_encoder(ensure_ascii):
    from json import encoder

    decimal = sys.modules["decimal"]  # a Decimal was met, so it is imported

    def number_text(value):
        if isinstance(value, decimal.Decimal):
            return "NaN" if value.is_nan() else str(value)
        return float_text(value)

    def float_text(value):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)

    def default(obj):
        raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)

    quote = encoder.encode_basestring_ascii if ensure_ascii else encoder.encode_basestring
    # json's own pure-Python encoder, told that Decimal is a number too.
    return encoder._make_iterencode(
        {}, default, quote, None, number_text, ": ", ", ", False, False, False, float=(float, decimal.Decimal)
    )
