"""The parts of the runtime beside bootstrap.py, one concern a module (stdlib + urllib3 only).

bootstrap.py keeps the configuration, handler loading, the context and the loop, and re-exports the public
names of these modules (`import bootstrap` is what handlers use):

- faults: the `Runtime.*` fault and text that is safe to report
- marshal: the event for the handler, the response body
- errors: the error JSON, error-type header and X-Ray cause of a failed invocation or init
- runtime_api: the Runtime API client and its HTTP/1.1 framing
- logs: log formats, the log sink (stdout or telemetry frames), the request id on every record
- event_loop: the event loop async handlers run on
- streaming: streamed responses
- extensions: the Extensions API client and external extensions
- shutdown: graceful shutdown hooks
- managed_instances: Lambda Managed Instances worker processes
- web: web apps served by the runtime (`_HANDLER=module:app`, `bootstrap.asgi`, `bootstrap.wsgi`)
- http_front: the events of Lambda's HTTP fronts, and the answer each front reads
- asgi, wsgi: ASGI 3 and WSGI apps served in-process, buffered or streamed
- phases: start-up timestamps for the benchmark
"""

from lambda_bootstrap import phases

__version__ = "0.1.0"
phases.mark("runtime")
