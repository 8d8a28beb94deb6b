"""What the two HTTP probers (http.py and journey.py) share besides redirects.py's rules: the method
option, the User-Agent they send and how many redirects they follow."""

from __future__ import annotations

import re
from typing import Annotated

import pydantic

from exporter import __version__

USER_AGENT = f"Pulse-Exporter/{__version__}"
REDIRECT_LIMIT = 10  # Go's http.Client default, which blackbox keeps; the journey's limit per step


def _http_method(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z]+", value):
        raise ValueError(f"not an HTTP method: {value!r}")
    return value.upper()


HttpMethod = Annotated[str, pydantic.AfterValidator(_http_method)]  # "get" is sent as GET
