"""The integration tests start servers with :mod:`conformance.launcher`; this name remains for old imports."""

from conformance.launcher import HOST, RunningServer, StartServer, run_server

__all__ = ["HOST", "RunningServer", "StartServer", "run_server"]
