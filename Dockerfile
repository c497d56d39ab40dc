# syntax=docker/dockerfile:1
# Freeze bootstrap.py + a function inside Amazon Linux 2 (glibc 2.26), so that one zip runs on both
# provided.al2 and provided.al2023. ./build.sh drives it; by hand:
#
#   docker buildx build --target artifact --output type=local,dest=out .     # out/bootstrap.zip
#   docker build --target smoke -t fn . && docker run --rm -p 9000:8080 fn
#   curl -s -XPOST localhost:9000/2015-03-31/functions/function/invocations -d '{}'
#
# Build args:
#   FUNCTION_DIR  the function's folder inside the build context (default: example). ./build.sh
#                 passes the folder as the named context "function" instead
#                 (--build-context function=PATH), which may be anywhere.
#   LAYOUT        onedir (default) or onefile
#   PY_IMAGE      the build image. Pin it by digest for reproducible builds, e.g.
#                 --build-arg PY_IMAGE=public.ecr.aws/lambda/python:3.11@sha256:<digest for the arch>
#                 python:3.12 and newer are Amazon Linux 2023 images: build those with TARGET=al2023.
#   TARGET        al2 (default) or al2023: the build fails if the artifact cannot run on provided.TARGET
#   SMOKE_IMAGE   the runtime image of the smoke stage: public.ecr.aws/lambda/provided:al2 (default)
#                 or public.ecr.aws/lambda/provided:al2023
# For arm64: docker buildx build --platform linux/arm64 ... (the images are multi-arch).
ARG PY_IMAGE=public.ecr.aws/lambda/python:3.11
ARG SMOKE_IMAGE=public.ecr.aws/lambda/provided:al2
ARG FUNCTION_DIR=example

# The function's code. ./build.sh replaces this stage with --build-context function=PATH.
FROM scratch AS function
ARG FUNCTION_DIR
COPY ${FUNCTION_DIR}/ /

FROM ${PY_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# PyInstaller needs objdump, objcopy, strip (binutils) and ldd; unzip checks the artifact.
# Versions come with the pinned base image (pin PY_IMAGE by digest).
# hadolint ignore=DL3033
RUN yum install -y binutils findutils unzip && yum clean all && rm -rf /var/cache/yum \
    && command -v objdump objcopy strip ldd unzip
WORKDIR /src
COPY requirements.txt /src/requirements.txt
RUN python3.11 -m venv /opt/freeze \
    && /opt/freeze/bin/python -m pip install --no-cache-dir --disable-pip-version-check -r /src/requirements.txt
COPY bootstrap.py /src/bootstrap.py
COPY scripts/freeze.sh scripts/glibc_report.py scripts/repro_zip.py /src/scripts/
COPY packaging/bootstrap.spec /src/packaging/bootstrap.spec
COPY --from=function / /src/function/
ARG LAYOUT=onedir
ARG TARGET=al2
ARG SOURCE_DATE_EPOCH=315532800
# The same freeze step as the native build and the tests; --target al2 fails the build if anything
# (a wheel of the function's requirements, say) needs a newer glibc than provided.al2 has.
RUN SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH}" /src/scripts/freeze.sh --python /opt/freeze/bin/python \
        --function /src/function --layout "${LAYOUT}" --out /out --entry /src/bootstrap.py --target "${TARGET}" \
    && rm -rf /out/.work \
    && unzip -Zt /out/bootstrap.zip \
    && sha256sum /out/bootstrap.zip

# docker buildx build --target artifact --output type=local,dest=DIR .
FROM scratch AS artifact
COPY --from=build /out/bootstrap.zip /out/glibc-report.txt /
COPY --from=build /out/bundle /bundle

# A zip deployment mimicked in the provided.* image: /var/task holds the unpacked zip; the image's
# entrypoint runs /var/runtime/bootstrap under the Runtime Interface Emulator with _HANDLER=CMD.
# The function is frozen into bootstrap: no source is copied, so the frozen code answers.
FROM ${SMOKE_IMAGE} AS smoke
COPY --from=build /out/bundle/ /var/task/
RUN mkdir -p /var/runtime && ln -sf /var/task/bootstrap /var/runtime/bootstrap
# The image's /lambda-entrypoint.sh exports its argument as _HANDLER; another handler:
# docker run --rm -p 9000:8080 fn other.handler
CMD ["app.handler"]
