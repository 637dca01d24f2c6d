import csv
import io
from collections.abc import AsyncIterator

from lilya.apps import Lilya
from lilya.routing import Path

from sendfs import send_file

ORDERS = [(1, "north", 9.5), (2, "south", 12.0), (3, "east", 7.25)]  # your database query


async def order_rows() -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "region", "total"])
    for order in ORDERS:  # e.g. `async for order in db.stream(query)`
        writer.writerow(order)
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()


async def orders_csv() -> object:
    # Sent as it is produced: chunked, in constant memory, with no ranges or validators.
    return send_file(order_rows(), download_name="orders.csv", as_attachment=True)


app = Lilya(routes=[Path("/orders.csv", orders_csv)])
