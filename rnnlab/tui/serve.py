"""The app in a browser: textual-serve (a Textual package, so it lives beside the app) runs `command` once
per browser tab and streams its screen over a websocket."""

from __future__ import annotations


def serve(command: str, host: str, port: int) -> None:
    from textual_serve.server import Server

    Server(command, host=host, port=port, title="rnnlab").serve()
