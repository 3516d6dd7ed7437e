"""The app scenarios of contract §5: the app under test driven by real clients, one transcript each.

Importing this package registers every scenario with :mod:`conformance.checks`.
One module per area:

- :mod:`.endpoints`: every WebSocket endpoint of contract §1, answered as its table says;
- :mod:`.feed`: the feed's numbered messages, its resumes, and a malformed ``since``;
- :mod:`.rejections`: handshakes refused before accept (unknown path, room, count, origin, cap);
- :mod:`.policies`: what ends an accepted connection (contract §3: 1000, 4408, 4413, 4429, 4503);
- :mod:`.access`: publish ids and acks, access tokens, presence;
- :mod:`.wire`: empty, unicode and fragmented messages, control frames, client closes, resets;
- :mod:`.load`: many clients at once, and resets among them;
- :mod:`.shutdown`: SIGTERM with open sockets.

:mod:`.helpers` holds what they share.  Scenarios marked ``generic`` need only
an echo endpoint (``--echo-path``) and run against any ASGI app.

Scenarios run in the order they register, so the import order below matters:
:mod:`.wire` comes last, so that its last scenario (invalid UTF-8, on which
hypercorn's trio worker can crash) is the last one its server process runs.
"""

from __future__ import annotations

from . import access, endpoints, feed, load, policies, rejections, shutdown, wire

__all__ = ["access", "endpoints", "feed", "load", "policies", "rejections", "shutdown", "wire"]
