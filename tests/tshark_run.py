"""tshark as the independent oracle: run it on a results directory's capture with its key tables."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["tshark"]


def tshark(out: Path, *args: str) -> str:
    """Run tshark on out/capture.pcap with out's key tables as the Wireshark configuration; its stdout."""
    conf = out / "ws"
    conf.mkdir(exist_ok=True)
    for name in ("ikev2_decryption_table", "esp_sa"):
        shutil.copy(out / name, conf / name)
    env = {"WIRESHARK_CONFIG_DIR": str(conf), "HOME": str(conf), "PATH": "/usr/bin:/bin"}
    res = subprocess.run(["tshark", "-r", str(out / "capture.pcap"), *args], capture_output=True, text=True,
                         env=env, timeout=120)
    errors = [line for line in res.stderr.splitlines() if "Running as user" not in line]
    assert res.returncode == 0 and errors == [], res.stderr
    return res.stdout
