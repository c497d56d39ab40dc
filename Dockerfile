# syntax=docker/dockerfile:1
# Freeze bootstrap.py + a function inside Amazon Linux 2023 (an AWS Lambda Python image), with the same
# freeze step as the native build; the bundle carries the image's C library (glibc 2.34), like every
# build. ./build.sh drives it and then proves the zip in a Lambda-like root; by hand:
#
#   docker buildx build --target artifact --output type=local,dest=out .     # out/bootstrap.zip
#   docker build --target smoke -t fn . && docker run --rm -p 9000:8080 fn
#   curl -s -XPOST localhost:9000/2015-03-31/functions/function/invocations -d '{}'
#
# Build args:
#   FUNCTION_DIR  the function's folder inside the build context (default: example). ./build.sh
#                 passes the folder as the named context "function" instead
#                 (--build-context function=PATH), which may be anywhere.
#   PY_IMAGE      the build image: public.ecr.aws/lambda/python:3.13 (default), :3.12 or :3.14, all
#                 Amazon Linux 2023. Pin it by digest for reproducible builds (@sha256:<digest per arch>).
#   PREFIX        where the zip is unpacked on Lambda: /var/task (default, a function) or /opt (a layer)
# For arm64: docker buildx build --platform linux/arm64 ... (the images are multi-arch).
ARG PY_IMAGE=public.ecr.aws/lambda/python:3.13
ARG FUNCTION_DIR=example

# The function's code. ./build.sh replaces this stage with --build-context function=PATH.
FROM scratch AS function
ARG FUNCTION_DIR
COPY ${FUNCTION_DIR}/ /

FROM ${PY_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# PyInstaller needs objdump, objcopy and strip (binutils) and ldd; the AL2023 images are "minimal":
# microdnf, no binutils. Versions come with the pinned base image.
# hadolint ignore=DL3041
RUN microdnf install -y binutils findutils unzip && microdnf clean all \
    && command -v objdump objcopy strip ldd unzip
WORKDIR /src
COPY requirements.lock /src/requirements.lock
RUN python3 -m venv /opt/freeze \
    && /opt/freeze/bin/python -m pip install --no-cache-dir --disable-pip-version-check --require-hashes -r /src/requirements.lock
COPY bootstrap.py /src/bootstrap.py
COPY lambda_bootstrap/ /src/lambda_bootstrap/
COPY scripts/freeze.sh scripts/check_function.py scripts/function_files.py scripts/pip_failure.py scripts/bundle_libc.py scripts/inventory.py scripts/strip_bundle.py scripts/host_paths.py scripts/dedup_bundle.py scripts/notices.py scripts/repro_zip.py scripts/glibc_report.py scripts/build_summary.py /src/scripts/
COPY packaging/ /src/packaging/
COPY --from=function / /src/function/
ARG PREFIX=/var/task
ARG SOURCE_DATE_EPOCH=315532800
# --allow-sdist (build.sh passes its own flags for freeze.sh), or nothing
ARG FREEZE_FLAGS=""
# The one freeze step (scripts/freeze.sh), as in the native build and the tests.
RUN SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH}" /src/scripts/freeze.sh --python /opt/freeze/bin/python \
        --function /src/function --out /out --entry /src/bootstrap.py --prefix "${PREFIX}" ${FREEZE_FLAGS} \
    && rm -rf /out/.work \
    && unzip -Zt /out/bootstrap.zip \
    && sha256sum /out/bootstrap.zip

# docker buildx build --target artifact --output type=local,dest=DIR .
FROM scratch AS artifact
COPY --from=build /out/bootstrap.zip /out/glibc-report.txt /out/build-summary.txt /
COPY --from=build /out/bundle /bundle

# A zip deployment in Lambda's own provided:al2023 image: /var/task holds the unpacked zip; the image's
# entrypoint runs /var/runtime/bootstrap under the Runtime Interface Emulator with _HANDLER=CMD.
# The bundle holds the function's own files and the frozen runtime with its requirements. For PREFIX=/var/task.
FROM public.ecr.aws/lambda/provided:al2023 AS smoke
COPY --from=build /out/bundle/ /var/task/
RUN mkdir -p /var/runtime && ln -sf /var/task/bootstrap /var/runtime/bootstrap
# The image's /lambda-entrypoint.sh exports its argument as _HANDLER; another handler:
# docker run --rm -p 9000:8080 fn other.handler
CMD ["app.handler"]
