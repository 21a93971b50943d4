"""ci/execute_notebook.py: the lost wake-up behind the kernel stalls of issue 33, reproduced with two sockets (no
kernel), and the fixed Output-widget stand-in that does not lose it."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

zmq = pytest.importorskip("zmq")
pytest.importorskip("nbclient")
pytest.importorskip("papermill")
import zmq.asyncio  # noqa: E402
from jupyter_client.channels import AsyncZMQSocketChannel  # noqa: E402
from jupyter_client.session import Session  # noqa: E402
from nbclient.output_widget import OutputWidget  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
POLL_MS = 2000  # nbclient's wait for the execute_reply: the cell timeout


def _engine():
    spec = importlib.util.spec_from_file_location("execute_notebook", REPO / "ci" / "execute_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _reply_wait(widget_class) -> float:
    """Seconds nbclient's poll for the execute_reply takes to wake when the reply arrives just before an Output
    widget's stand-in sends its state on the same shell socket (the order of the one traced stall)."""
    router = zmq.Context.instance().socket(zmq.ROUTER)  # the kernel's shell socket
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer = zmq.asyncio.Context.instance().socket(zmq.DEALER)  # the client's, as nbclient's AsyncKernelClient has it
    dealer.connect(f"tcp://127.0.0.1:{port}")
    try:
        session = Session(key=b"")
        session.send(dealer, "execute_request", {"code": "interact(...)"})
        identity = router.recv_multipart()[0]
        poll = asyncio.ensure_future(dealer.poll(POLL_MS))  # nbclient: shell_channel.get_msg(timeout)
        await asyncio.sleep(0.05)  # the poll is waiting
        router.send_multipart([identity, b"execute_reply"])
        time.sleep(0.05)  # the reply has arrived while the loop handles IOPub output for the widget
        client = SimpleNamespace(session=session, shell_channel=AsyncZMQSocketChannel(dealer, session))
        widget = widget_class("comm-1", {"outputs": []}, client, SimpleNamespace())
        widget.parent_header = {}
        widget.sync_state()  # what the stand-in does on every captured output
        start = time.perf_counter()
        assert await poll == zmq.POLLIN  # the reply is there either way ...
        return time.perf_counter() - start  # ... the question is when the poll notices
    finally:
        dealer.close(0)
        router.close(0)


def test_nbclients_output_widget_stand_in_loses_the_reply_until_the_timeout():
    """The cause: OutputWidget sends through Session.send, which uses a synchronous shadow of the asyncio socket;
    the send consumes the socket's edge-triggered wake-up and the waiting poll sleeps to its timeout."""
    waited = asyncio.run(_reply_wait(OutputWidget))
    assert waited > 0.9 * POLL_MS / 1000


def test_the_fixed_stand_in_wakes_the_waiting_poll_at_once():
    waited = asyncio.run(_reply_wait(_engine().WakingOutputWidget))
    assert waited < 0.2


def test_the_engine_puts_the_fixed_stand_in_in_nbclients_widget_registry():
    engine = _engine()
    import nbformat
    from papermill.engines import papermill_engines

    assert papermill_engines.get_engine(engine.ENGINE) is engine.WakingEngine
    nb_man = SimpleNamespace(nb=nbformat.v4.new_notebook())
    client = engine.WakingNotebookClient(nb_man, kernel_name="python3")
    assert client.widget_registry["@jupyter-widgets/output"]["OutputModel"] is engine.WakingOutputWidget
