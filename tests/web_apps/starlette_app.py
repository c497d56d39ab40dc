"""A Starlette app with a lifespan: startup state reaches the routes."""

import contextlib

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"greeting": "hello from startup"}


async def home(request):
    return JSONResponse({"greeting": request.state.greeting, "root_path": request.scope["root_path"]})


async def where(request):
    return PlainTextResponse(str(request.url_for("home")))


app = Starlette(routes=[Route("/", home, name="home"), Route("/where", where)], lifespan=lifespan)
