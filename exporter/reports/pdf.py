"""The report's HTML (html.py) as a PDF, with WeasyPrint: the same document, laid out on A4 pages.

WeasyPrint is part of the `render` extra and needs pango from the system (Debian: libpangoft2-1.0-0);
without either, `PdfUnavailable` says which is missing and how to install it. The document fetches
nothing: only the report's own `data:` pictures are allowed, any other URL is refused.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any


class PdfUnavailable(Exception):
    """WeasyPrint or the system libraries it needs are not installed."""


def _weasyprint() -> Any:
    try:
        # WeasyPrint prints a banner on stdout when its libraries are missing: the error below says it.
        with contextlib.redirect_stdout(io.StringIO()):
            import weasyprint  # noqa: PLC0415 - heavy, and only for the PDF
    except ModuleNotFoundError:
        raise PdfUnavailable(
            "cannot write the PDF: WeasyPrint is not installed (pip install 'pulse-exporter[render]')"
        ) from None
    except OSError as error:  # cffi could not load pango, gobject or harfbuzz
        reason = str(error).split(":", 1)[0] if str(error) else type(error).__name__
        raise PdfUnavailable(
            f"cannot write the PDF: WeasyPrint cannot load its system libraries ({reason}); "
            "install pango (Debian/Ubuntu: apt-get install libpangoft2-1.0-0)"
        ) from None
    return weasyprint


def pdf_bytes(html: str) -> bytes:
    """The PDF of an HTML document (PdfUnavailable when WeasyPrint cannot run here)."""
    weasyprint = _weasyprint()
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"})  # the charts; nothing from a network or disk
    document = weasyprint.HTML(string=html, url_fetcher=fetcher, media_type="print")
    result: bytes = document.write_pdf()
    return result


def write_pdf(html: str, path: Path) -> None:
    path.write_bytes(pdf_bytes(html))
