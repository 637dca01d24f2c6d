import os

from lilya.apps import Lilya
from lilya.routing import Path

from sendfs import FileResponse, registry, send_from_storage

BUCKET = os.environ.get("REPORTS_BUCKET", "acme-reports")

registry.mount(
    "reports",
    f"s3://{BUCKET}/published",
    # None means AWS itself; set it for MinIO, Cloudflare R2, Ceph, LocalStack...
    endpoint_url=os.environ.get("S3_ENDPOINT_URL"),
    # No key/secret here: the usual AWS chain applies (environment, ~/.aws, IAM roles).
    retries=2,  # s3fs's own attempts per S3 call (default 5)
    config_kwargs={"connect_timeout": 3, "read_timeout": 10, "retries": {"max_attempts": 2}},
)


async def report(name: str) -> FileResponse:
    return send_from_storage("reports", name, as_attachment=True, max_age=600)


app = Lilya(
    routes=[Path("/reports/{name:path}", report)],
    lifespan=registry.lifespan,  # closes the S3 sessions at shutdown
)
