import csv
import io
import tempfile
from typing import IO

from lilya.apps import Lilya
from lilya.routing import Path

from sendfs import FileResponse, send_file

ORDERS = [(1, "9.50"), (2, "120.00"), (3, "0.99")]


async def orders_csv() -> FileResponse:
    # Small and built at once: a BytesIO. It is served with ranges and closed afterwards.
    text = io.StringIO()
    csv.writer(text).writerows([("id", "total"), *ORDERS])
    data = io.BytesIO(text.getvalue().encode())
    return send_file(data, download_name="orders.csv", as_attachment=True)


async def orders_log() -> FileResponse:
    # Maybe large: a SpooledTemporaryFile stays in memory up to max_size, then moves to
    # disk. Rewind it after writing: file objects are served from their current position.
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    for order_id, total in ORDERS:
        spool.write(f"order {order_id}: {total}\n".encode())
    spool.seek(0)
    return send_file(spool, download_name="orders.log", etag=False)


def write_invoice_pdf(out: IO[bytes], number: int) -> None:
    """Write a one-page PDF: stands for reportlab, fpdf2, WeasyPrint... writing to `out`."""
    text = f"BT /F1 24 Tf 72 720 Td (Invoice {number}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
        b" /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
    ]
    body = bytearray(b"%PDF-1.4\n")
    offsets = []
    for index, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n%s\nendobj\n" % (index, obj)
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    body += b"startxref\n%d\n%%%%EOF\n" % xref
    out.write(bytes(body))


async def invoice(number: int) -> FileResponse:
    pdf = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)
    write_invoice_pdf(pdf, number)
    pdf.seek(0)
    return send_file(pdf, download_name=f"invoice-{number}.pdf", max_age=0)


app = Lilya(
    routes=[
        Path("/exports/orders.csv", orders_csv),
        Path("/exports/orders.log", orders_log),
        Path("/invoices/{number:int}", invoice),
    ]
)
