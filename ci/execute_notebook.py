#!/usr/bin/env python
"""papermill's command line, with one engine more: `--engine r3gan`, whose Output widgets never stall a cell.

    python ci/execute_notebook.py IN.ipynb OUT.ipynb --engine r3gan [papermill's options]

Why (issue 33; upstream: jupyter/nbclient issue 312, open, and its pull request 311). nbclient keeps a stand-in for
every ipywidgets Output widget a cell opens (`ipywidgets.interact` opens one), and on each output it captures the
stand-in sends the widget's new state back to the kernel on the shell socket (`OutputWidget._publish_msg`, through
`Session.send`). `Session.send` sends on a *synchronous shadow* of that asyncio socket. Meanwhile nbclient awaits the
cell's execute_reply on the same socket (`shell_channel.get_msg(timeout)`, an asyncio poll that wakes on the
socket's edge-triggered file descriptor). When the reply has just arrived, the shadow's send makes libzmq process
it and clear the descriptor's edge; the asyncio wrapper never hears of it (it only re-checks after sends of its
own), so the poll sleeps until its timeout, finds the reply then, and the cell ends a full cell timeout late:
60 s in a smoke chapter, 900 s in a cpu one. `tests/test_execute_notebook.py` reproduces the lost wake-up with two
sockets, no kernel.

The fix: the stand-in sends through the asyncio socket itself (`send_multipart` on it), which wakes a waiting poll
whenever the send leaves a message to read. Everything else is papermill's NBClientEngine unchanged.
"""

from __future__ import annotations

import sys
from typing import Any

import zmq.asyncio
from nbclient.jsonutil import json_clean
from nbclient.output_widget import OutputWidget
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.log import logger

ENGINE = "r3gan"
OUTPUT_WIDGET = ("@jupyter-widgets/output", "OutputModel")


class WakingOutputWidget(OutputWidget):
    """nbclient's Output-widget stand-in, sending its state updates through the asyncio socket (module docstring)."""

    def _publish_msg(self, msg_type: str, data: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
                     buffers: list[Any] | None = None, **keys: Any) -> None:
        content = json_clean(dict(data=data or {}, comm_id=self.comm_id, **keys))
        session, socket = self.kernel_client.session, self.kernel_client.shell_channel.socket
        msg = session.msg(msg_type, content=content, parent=self.parent_header, metadata=metadata or {})
        if isinstance(socket, zmq.asyncio.Socket):
            socket.send_multipart(session.serialize(msg))  # a Future, done at once; a waiting poll is woken
        else:  # a blocking client has no asyncio poll to lose
            session.send(socket, msg)


class WakingNotebookClient(PapermillNotebookClient):
    """papermill's notebook client with `WakingOutputWidget` as the Output widget's stand-in."""

    def __init__(self, nb_man: Any, km: Any = None, raise_on_iopub_timeout: bool = True, **kw: Any) -> None:
        super().__init__(nb_man, km=km, raise_on_iopub_timeout=raise_on_iopub_timeout, **kw)
        module, model = OUTPUT_WIDGET
        self.widget_registry.setdefault(module, {})[model] = WakingOutputWidget


class WakingEngine(NBClientEngine):
    """NBClientEngine executing with `WakingNotebookClient`; the same options, passed on under nbclient's names."""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                 stdout_file: Any = None, stderr_file: Any = None, start_timeout: int = 60,
                                 execution_timeout: int | None = None, **kwargs: Any) -> Any:
        for unused in ("input_path", "timeout", "startup_timeout"):
            kwargs.pop(unused, None)
        client = WakingNotebookClient(nb_man, timeout=execution_timeout, startup_timeout=start_timeout,
                                      kernel_name=kernel_name, log=logger, log_output=log_output,
                                      stdout_file=stdout_file, stderr_file=stderr_file, **kwargs)
        return client.execute()


papermill_engines.register(ENGINE, WakingEngine)


def main(argv: list[str] | None = None) -> None:
    from papermill.cli import papermill

    papermill.main(args=sys.argv[1:] if argv is None else argv, prog_name="execute_notebook.py")


if __name__ == "__main__":
    main()
