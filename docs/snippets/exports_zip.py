from collections.abc import AsyncIterator

from lilya.apps import Lilya
from lilya.routing import Path

from sendfs import ZipEntry, registry, send_zip

SUMMARY = b"quarter,total\nQ3,1234.50\n"


async def summary() -> AsyncIterator[bytes]:
    yield SUMMARY


async def quarter_export(quarter: str) -> object:
    return send_zip(
        {
            # Any source send_file takes: storage URLs, paths, file objects, async iterables.
            f"{quarter}/report.pdf": f"s3://acme-reports/{quarter}/report.pdf",
            f"{quarter}/invoices.csv": f"s3://acme-reports/{quarter}/invoices.csv",
            "README.txt": "docs/export-readme.txt",
            # A generated entry: give its size to keep the exact Content-Length.
            "summary.csv": ZipEntry(summary(), size=len(SUMMARY)),
        },
        download_name=f"acme-{quarter}.zip",
    )


app = Lilya(routes=[Path("/exports/{quarter}.zip", quarter_export)], lifespan=registry.lifespan)
