"""`rnnlab serve`: the same app in a browser, through textual-serve (rnnlab/tui/serve.py).

textual-serve starts one `rnnlab tui` process per browser tab and streams its screen over a websocket:
nothing here draws or serves pages itself. Whoever reaches the address drives the app as its owner does
(launch, stop, delete runs), so it listens on 127.0.0.1 unless told otherwise, and says so when it is not.
"""

from __future__ import annotations

import errno
import shlex
import socket
import sys
from typing import Annotated

import typer

from .cli_common import RunsDir, err, reports_errors, runs_dir_of
from .errors import ConfigError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def app_command(runs_dir) -> str:
    """The command textual-serve runs for each browser tab: this interpreter's rnnlab, on these runs."""
    return shlex.join([sys.executable, "-m", "rnnlab", "tui", "--runs-dir", str(runs_dir)])


def check_free(host: str, port: int) -> None:
    """A port already taken (or a host that is not this machine's) is a one-line error before the banner."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        reason = ("in use by another program" if error.errno == errno.EADDRINUSE
                  else error.strerror or str(error))
        raise ConfigError("--port" if error.errno == errno.EADDRINUSE else "--host",
                          port if error.errno == errno.EADDRINUSE else host, reason,
                          "a free port (e.g. --port 8001)" if error.errno == errno.EADDRINUSE
                          else "an address of this machine, e.g. 127.0.0.1") from None


@reports_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on; anyone who reaches it drives the app")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
    runs_dir: RunsDir = None,
) -> None:
    """Open the app in a browser: serve it on http://HOST:PORT (one app per browser tab)."""
    from .tui.serve import serve as serve_app  # textual-serve is the TUI's: imported only here

    runs_dir = runs_dir_of(runs_dir)
    check_free(host, port)
    if host not in LOCAL_HOSTS:
        err.print(f"warning: serving on {host}:{port}, not only this machine: anyone who can reach it can launch, "
                  "stop and delete runs in " + str(runs_dir), markup=False, highlight=False)
    serve_app(app_command(runs_dir), host, port)
