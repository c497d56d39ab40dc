"""The realistic benchmark handler: `_HANDLER=boto_app.handler`.

It imports boto3 at module level and creates an S3 client, as most real functions do.
Creating the client makes no network call; the benchmark sets dummy credentials and a
region so that botocore never looks for instance metadata.
"""

import boto3

s3 = boto3.client("s3")


def handler(event, context):
    return {"ok": True, "region": s3.meta.region_name}
