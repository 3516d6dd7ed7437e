"""asgi-ws: real-time WebSockets on raw ASGI, with no framework.

The ASGI callable is ``asgi_ws.app:app``; :func:`create_app` builds one from
:class:`Settings`.  Start reading at :mod:`asgi_ws.app`, then
:mod:`asgi_ws.websocket`.
"""

from __future__ import annotations

from .settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError", "__version__"]

__version__ = "0.1.0"
