"""A one-module Django site: a JSON view and StreamingHttpResponses (sync and async iterators), served by Django's own ASGI and WSGI
handlers (`asgi_app`, `wsgi_app`)."""

import asyncio
import time

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only",  # noqa: S106
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    USE_TZ=True,
)

from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402


def hello(request):
    return JsonResponse({"message": "hello", "path": request.path, "script": request.META.get("SCRIPT_NAME")})


def stream(request):
    n = int(request.GET.get("n", 3))

    def lines():
        for i in range(n):
            if i:
                time.sleep(float(request.GET.get("interval", 0)))
            yield "line %d\n" % i

    return StreamingHttpResponse(lines(), content_type="text/plain")


def astream(request):
    """Under ASGI, Django streams an async iterator as it goes (a sync one it reads whole first)."""
    n = int(request.GET.get("n", 3))

    async def lines():
        for i in range(n):
            if i:
                await asyncio.sleep(float(request.GET.get("interval", 0)))
            yield "line %d\n" % i

    return StreamingHttpResponse(lines(), content_type="text/plain")


urlpatterns = [path("hello", hello), path("stream", stream), path("astream", astream)]
asgi_app = get_asgi_application()
wsgi_app = get_wsgi_application()
