import os

from lilya.apps import Lilya
from lilya.exceptions import HTTPException
from lilya.responses import JSONResponse
from lilya.routing import Path

from sendfs import presigned_url, registry
from sendfs.exceptions import SourceNotFound

registry.mount("reports", os.environ.get("REPORTS_URL", "s3://acme-reports"))


async def report_link(year: int, quarter: int) -> JSONResponse:
    # Check first that the user may read it: whoever holds the URL can, for 5 minutes.
    try:
        url = await presigned_url(
            f"reports://{year}/q{quarter}.pdf",
            download_name=f"Report {year} Q{quarter}.pdf",
            as_attachment=True,
            expires=300,
        )
    except SourceNotFound:
        raise HTTPException(status_code=404) from None
    return JSONResponse({"url": url, "expires_in": 300})


app = Lilya(
    routes=[Path("/reports/{year:int}/{quarter:int}/link", report_link)],
    lifespan=registry.lifespan,
)
