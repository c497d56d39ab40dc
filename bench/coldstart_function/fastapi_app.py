"""The web benchmark function: a FastAPI hello app. Ours serves it as `fastapi_app:app`; the reference is
Mangum on awslambdaric, `fastapi_app.handler`."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello():
    return {"message": "hello"}


def __getattr__(name):
    # Mangum is imported only by the reference side (at its init), so ours does not pay for it.
    if name == "handler":
        from mangum import Mangum

        return Mangum(app)
    raise AttributeError(name)
