#!/bin/sh
# A bootstrap for the RIE that runs AWS's reference client, awslambdaric:
#   aws-lambda-rie ... /bin/sh awslambdaric_bootstrap.sh /path/to/python
# The python given must have awslambdaric installed (requirements-dev.txt pins it).
# It imports the handler module from the cwd, so run it in LAMBDA_TASK_ROOT.
set -eu
cd "${LAMBDA_TASK_ROOT:?LAMBDA_TASK_ROOT is not set}"
exec "${1:-python3}" -m awslambdaric "${_HANDLER:?_HANDLER is not set}"
