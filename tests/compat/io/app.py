"""Cryptography, imaging, XML, a database driver, gRPC with protobuf, and compression."""

import base64
import concurrent.futures
import io

import grpc
import lxml.etree
import psycopg2
import psycopg2.extensions
import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import struct_pb2
from google.protobuf.internal import api_implementation
from PIL import Image, ImageDraw

METHOD = "/compat.Echo/Upper"


def crypto():
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    signature = key.sign(b"payload")
    key.public_key().verify(signature, b"payload")
    sealed = AESGCM(bytes(32)).encrypt(bytes(12), b"secret", None)
    return {"ed25519": base64.b16encode(signature[:8]).decode(), "aesgcm": base64.b16encode(sealed).decode()}


def imaging():
    image = Image.new("RGB", (40, 30), "white")
    ImageDraw.Draw(image).rectangle((10, 10, 19, 19), fill=(255, 0, 0))
    out = {}
    for fmt in ("PNG", "JPEG", "WEBP"):
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        reopened = Image.open(io.BytesIO(buffer.getvalue()))
        reopened.load()
        out[fmt] = [reopened.size, reopened.getpixel((15, 15))[0] > 200, reopened.getpixel((2, 2))[1] > 200]
    return out


def xml():
    doc = lxml.etree.fromstring(b"<r><i n='2'>b</i><i n='1'>a</i></r>")
    sort = lxml.etree.XSLT(
        lxml.etree.fromstring(
            b"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
            <xsl:template match="/r"><o><xsl:for-each select="i"><xsl:sort select="@n"/>
            <xsl:value-of select="."/></xsl:for-each></o></xsl:template></xsl:stylesheet>"""
        )
    )
    # Declared encodings: lxml's own iconv converts them, not the bundled C library's.
    legacy = {
        name: lxml.etree.fromstring(
            ('<?xml version="1.0" encoding="%s"?><t>%s</t>' % (name, text)).encode(name)
        ).text
        for name, text in (("windows-1252", "caf\u00e9 \u20ac"), ("Shift_JIS", "\u65e5\u672c\u8a9e"))
    }
    return {
        "xpath": doc.xpath("sum(//i/@n)"),
        "xslt": str(sort(doc)).split("?>")[-1].strip(),
        "legacy": legacy,
    }


def database():
    try:
        # A closed port on this machine: libpq itself must load, resolve and fail to connect.
        psycopg2.connect(host="127.0.0.1", port=1, dbname="x", user="x", connect_timeout=2)
        refused = None
    except psycopg2.OperationalError as exc:
        refused = "Connection refused" in str(exc) or "connection refused" in str(exc).lower()
    return {
        "adapt": psycopg2.extensions.adapt([1, "o'k"]).getquoted().decode(),
        "libpq": psycopg2.extensions.libpq_version() >= 100000,
        "refused": refused,
    }


def rpc():
    def upper(request, context):
        message = struct_pb2.Struct()
        message.ParseFromString(request)
        message["text"] = message["text"].upper()
        return message.SerializeToString()

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "compat.Echo", {"Upper": grpc.unary_unary_rpc_method_handler(upper)}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
            request = struct_pb2.Struct()
            request["text"] = "hello"
            reply = struct_pb2.Struct()
            reply.ParseFromString(channel.unary_unary(METHOD)(request.SerializeToString(), timeout=10))
    finally:
        server.stop(None)
    return {"reply": reply["text"], "protobuf": api_implementation.Type()}


def compression():
    data = b"lambda " * 1000
    packed = zstandard.ZstdCompressor(level=10).compress(data)
    return {
        "ratio_over_50": len(data) / len(packed) > 50,
        "roundtrip": zstandard.ZstdDecompressor().decompress(packed) == data,
        "backend": zstandard.backend,
    }


def handler(event, context):
    return {
        "cryptography": crypto(),
        "pillow": imaging(),
        "lxml": xml(),
        "psycopg2": database(),
        "grpc": rpc(),
        "zstandard": compression(),
    }
