"""The AWS Lambda Runtime API, emulated: the platform's rules, held once for the whole project.

Its users: the tests (with the fault injection below), the benchmarks (bench/), the build's init check
(scripts/lambda_root.py) and the local endpoint (dev.sh). Standard library only, Python 3.9+, Linux. It
binds 127.0.0.1 only; every wait in it is bounded; ``stop()`` ends what it started.

Caller side
===========

    import sys
    from runtime_emulator import RuntimeEmulator, subprocess_launcher

    launch = subprocess_launcher([sys.executable, "bootstrap.py"],
                                 env={"_HANDLER": "app.handler", "LAMBDA_TASK_ROOT": "/abs/example"})
    with RuntimeEmulator(launcher=launch, timeout=3.0) as emu:   # port=0: a free port
        inv = emu.invoke({"n": 1}, client_context={"custom": {"k": "v"}}, tenant_id="blue")
        for chunk in inv.chunks(timeout=10):    # each piece as the runtime sends it
            print(chunk)
        inv.wait(timeout=10)
        print(inv.outcome, inv.content_type, inv.body, inv.error_type, inv.trailers)

``RuntimeEmulator(*, host="127.0.0.1", port=0, prefix="", timeout=300.0, concurrency=1, launcher=None,
answer_204_after=None, function_name="test-fn", ...)``

- ``start()`` / ``stop()``, or ``with``. ``port``; ``address`` ("127.0.0.1:PORT"); ``runtime_api``: the
  value for ``AWS_LAMBDA_RUNTIME_API`` (``address``, or ``http://address/prefix`` with a ``prefix`` such as
  ``"/.rt"``, as cargo-lambda hands out); ``runtime_env()``: the variables Lambda gives a runtime
  (``AWS_LAMBDA_RUNTIME_API``, function name, memory, version, log group and stream, region, and
  ``AWS_LAMBDA_MAX_CONCURRENCY`` when ``concurrency`` > 1).
- ``invoke(payload=b"{}", *, content_type="application/json", client_context=None, cognito_identity=None,
  trace_id=None, tenant_id=None, request_id=None, timeout=None) -> Invocation``. Callable from any thread;
  any number may be in flight: they queue and the runtime takes them one at a time (``concurrency=N``: up
  to N at once, Managed Instances). ``payload``: bytes as-is, str as UTF-8, anything else as JSON.
  ``client_context`` / ``cognito_identity``: a dict (sent as JSON) or the decoded JSON text. ``timeout``
  overrides the function timeout for this invoke. With a launcher and no runtime running, invoke starts one
  (an init, as Lambda's first invoke does).
- Runtime process (with ``launcher``): ``start_runtime()``, ``stop_runtime()``, ``restart_runtime()``,
  ``runtime`` (the current handle or None), ``wait_init(timeout) -> "ready" | "init_error" | "exited"``
  (also without a launcher: the runtime's first ``/next`` or ``/init/error``), ``init_error`` (the posted
  init error document of the current runtime, a dict, or None), ``init_duration_ms``.
- ``shutdown(reason="spindown")``: Lambda's shutdown phase (below), then the runtime is gone.

``launcher`` is ``callable(env: dict) -> handle``: ``env`` is ``runtime_env()``; the handle has ``poll()``
(exit status or None), ``kill()`` and ``send_signal(sig)``, as ``subprocess.Popen`` does.
``subprocess_launcher(argv, env=None, cwd=None, stdout=None, stderr=None)`` makes one that runs argv in its
own session with ``env`` over ``runtime_env()`` and kills the whole group.

``Invocation``, the caller's handle:

- ``request_id``; ``chunks(timeout=30.0)``: an iterator of the response body's pieces (bytes) as they
  arrive, each within ``timeout`` seconds of the last or ``TimeoutError``; it ends when the answer is
  complete. A buffered answer or an error is one piece.
- ``wait(timeout=30.0) -> self`` (``TimeoutError`` if not done); ``done``.
- ``outcome``:
  ``"response"``: the function's answer (buffered, or streamed to its end without error trailers);
  ``"error"``: a ``/error`` post, a stream that ended with error trailers, or a response over its limit
  (``error_type`` ``Function.ResponseSizeTooLarge``);
  ``"timeout"``: no answer within the function timeout (``error_type`` ``Sandbox.Timedout``, message
  ``"RequestId: <id> Error: Task timed out after N.NN seconds"``);
  ``"init_error"``: the runtime posted ``/init/error`` (the posted document is the body);
  ``"exited"``: the runtime exited without answering (``Runtime.ExitError``).
- ``streamed`` (bool), ``content_type``, ``body`` (what the caller gets: the response, or the error
  document), ``error_type`` (RAPID's normalised ``Lambda-Runtime-Function-Error-Type``, ``Runtime.Unknown``
  when absent or malformed), ``trailers`` (dict), ``error_body`` (a trailer's body, base64-decoded),
  ``init_duration_ms`` (when this invoke waited for an init), ``duration_ms``.

Runtime side: the rules (RAPID's, classic and Managed Instances)
================================================================

- ``GET /2018-06-01/runtime/invocation/next`` long-polls (no time limit; ``answer_204_after=S`` answers
  204 after S seconds without an event, as cargo-lambda does). An event carries every header Lambda sends:
  ``Lambda-Runtime-Aws-Request-Id``, ``-Deadline-Ms``, ``-Invoked-Function-Arn``, ``-Trace-Id``,
  ``-Client-Context``, ``-Cognito-Identity``, ``-Aws-Tenant-Id``, ``-Invocation-Id`` (empty ones left out,
  ``Content-Type`` defaulted to application/json). The runtime's first ``/next`` ends init.
- Exactly one answer per event: ``/response`` or ``/error`` for the current event gets 202
  ``{"status":"OK"}``; a second answer 403 ``InvalidStateTransition``; an unknown id 400
  ``InvalidRequestID``; a buffered response over 6,291,556 bytes 413 ``RequestEntityTooLarge`` (the event
  then counts as answered); a ``Lambda-Runtime-Function-Response-Mode`` other than ``streaming`` 400.
  Managed Instances (``concurrency`` > 1): any event in flight may be answered; unknown or answered ids get
  400, a late answer after a timeout 410 ``InvokeTimeout``.
- Streamed responses (chunked, trailers ``Lambda-Runtime-Function-Error-Type`` and ``-Error-Body``) up to
  200 MiB; a trailer section over 4096 bytes closes the connection unanswered, as RAPID's Go server does.
- ``/runtime/init/error`` gets 202; the invokes waiting, and the next ones until a new init, get it.
- The function timeout: no answer by the deadline gives ``Sandbox.Timedout``; the runtime is then stopped
  and started again (with a launcher; classic mode). A late answer from it gets 403 (classic) / 410 (MI).
- Extensions API ``/2020-01-01/extension``: ``register`` (name header required, ``Lambda-Extension-
  Identifier`` uuid back, registration closed after init), ``event/next`` (blocking; INVOKE for every
  event served, SHUTDOWN at shutdown), ``init/error``, ``exit/error``; init ends only when every
  registered extension has called ``event/next``. Shutdown: SHUTDOWN with ``deadlineMs`` (2000 ms with
  external extensions, 500 with internal ones only), SIGTERM to the runtime when an extension is
  registered, SIGKILL at the deadline.

Recording and fault injection (tests)
=====================================

- ``push_event(body, *, request_id=None, deadline_ms=..., trace_id=None, ...) -> request id``: an event
  with no caller, headers exactly as given (None leaves one out); its ``Invocation`` is ``invocation(id)``.
- ``script_next(*faults)``, ``script_post(kind, *faults, request_id=None)``: what the next ``/next`` or
  post of ``kind`` ("response", "error", "init_error", "ext_register", ...) gets instead of the rule's
  answer; a fault is a ``Fault`` or an int (``Fault("status", status)``). ``Fault`` kinds on ``/next``:
  ``status``, ``reset``, ``reset_mid_headers``, ``reset_after_headers``, ``truncate``, ``huge_length``,
  ``stall``, ``stall_body``, ``raw``, ``interim``, ``close``, ``chunked``; on posts: ``status``, ``reset``,
  ``truncate``.
- Every request is recorded (``Request``: kind, headers, body, chunks with arrival times, trailers, the
  status answered): ``requests``, ``of_kind()``, ``answers``, ``answers_for(id)``, ``init_errors``,
  ``check_ledger()`` (every event delivered answered exactly once), ``describe()``; waits:
  ``wait_for(predicate)``, ``wait_answer(id)``, ``wait_idle()``, ``wait_init_error()``, ``wait_chunks()``,
  ``wait_extension_waiting(name)``; extensions: ``extension_invoke()``, ``extension_shutdown()``,
  ``push_extension_event()``, ``extension_named()``.

Command line: ``python scripts/runtime_emulator.py --port N [--prefix /.rt]`` serves until interrupted.
"""
