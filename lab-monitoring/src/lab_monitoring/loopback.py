"""HTTP requests from a charm to its own service on this machine (127.0.0.1).

Never through a proxy: a hook's environment may name one (Juju's legacy http-proxy model setting
puts http_proxy there), and a proxy elsewhere cannot reach this machine's loopback. urllib is
imported on first use, not by every hook (update-status included) that imports this module.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import urllib.request


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    import urllib.request

    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def open_url(request: str | urllib.request.Request, timeout: float) -> Any:
    """Open a URL or Request on loopback without any proxy; use as a context manager.

    Raises:
        urllib.error.HTTPError: the service answered with an error status.
        OSError: it could not be reached (refused, timed out, ...).
    """
    return _opener().open(request, timeout=timeout)


def get_status(url: str, timeout: float) -> int | None:
    """Return the HTTP status of a GET, None if nothing answered (or it timed out)."""
    import urllib.error

    try:
        with open_url(url, timeout) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None
