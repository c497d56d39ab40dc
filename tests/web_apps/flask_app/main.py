"""A Flask app with nothing Lambda-specific in it: JSON routes and a streamed generator."""

import time

from flask import Flask, Response, jsonify, request, stream_with_context, url_for

app = Flask(__name__)


@app.get("/hello")
def hello():
    return jsonify(message="hello", url=url_for("hello"))


@app.post("/json")
def echo_json():
    return jsonify(received=request.get_json(), args=request.args.to_dict(flat=False))


@app.get("/stream")
def stream():
    n = request.args.get("n", 3, type=int)
    interval = request.args.get("interval", 0.3, type=float)

    def generate():
        for i in range(n):
            if i:
                time.sleep(interval)
            yield "line %d %.3f\n" % (i, time.time())

    return Response(stream_with_context(generate()), mimetype="text/plain")
