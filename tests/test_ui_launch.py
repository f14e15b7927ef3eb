"""`andini ui`'s launcher: the Streamlit command line and the clear error for a busy port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from ui.app.launch import APP, streamlit_command


def test_command_runs_the_app_headless_without_usage_stats():
    cmd = streamlit_command(8600, "127.0.0.1")
    assert cmd[:5] == [sys.executable, "-m", "streamlit", "run", str(APP)]
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags["--server.headless"] == "true"
    assert flags["--server.port"] == "8600"
    assert flags["--server.address"] == "127.0.0.1"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert streamlit_command(8600, "127.0.0.1", no_ingest=True)[-2:] == ["--", "--no-ingest"]
    assert APP.is_file()


def test_busy_port_is_an_error_with_a_fix():
    andini = Path(sys.executable).with_name("andini")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([str(andini), "ui", "--port", str(port)], capture_output=True, text=True,
                              timeout=60)
    assert done.returncode != 0
    assert f"Cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr
