"""The probe apps behind the reference adapters, for awslambdaric: `reference_handlers.mangum_handler`
(ASGI) and `reference_handlers.apig_handler` (WSGI)."""

from apig_wsgi import make_lambda_handler
from mangum import Mangum
from probe import asgi_app, wsgi_app

mangum_handler = Mangum(asgi_app, lifespan="off")
apig_handler = make_lambda_handler(wsgi_app, binary_support=True)
