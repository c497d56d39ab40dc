"""A FastAPI app with nothing Lambda-specific in it: JSON routes, path and query parameters, a form post,
a streamed CSV export, server-sent events and a background task."""

import asyncio
import time

from fastapi import BackgroundTasks, FastAPI, Form, Query
from fastapi.responses import StreamingResponse

app = FastAPI()


@app.get("/hello")
async def hello():
    return {"message": "hello"}


@app.get("/items/{item_id}")
async def item(item_id: int, q: str = "", tags: list[str] | None = Query(None)):  # noqa: B008
    return {"item_id": item_id, "q": q, "tags": tags or []}


@app.post("/json")
async def echo_json(payload: dict):
    return {"received": payload}


@app.post("/login")
async def login(username: str = Form(), remember: bool = Form(False)):
    return {"username": username, "remember": remember}


@app.get("/export.csv")
async def export():
    async def rows():
        yield "id,name\n"
        for i in range(3):
            yield "%d,row%d\n" % (i, i)

    return StreamingResponse(rows(), media_type="text/csv")


@app.get("/events")
async def events(n: int = 3, interval: float = 0.3):
    async def stream():
        for i in range(n):
            if i:
                await asyncio.sleep(interval)
            yield 'id: %d\nevent: tick\ndata: {"i": %d, "t": %.3f}\n\n' % (i, i, time.time())

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@app.post("/audit")
async def audit(path: str, tasks: BackgroundTasks):
    def write_later():
        time.sleep(0.2)
        with open(path, "a") as f:
            f.write("audited\n")

    tasks.add_task(write_later)
    return {"queued": True}
