"""Start the interop charon by hand: ``python tools/interop/start_charon.py /tmp/charon-interop``.

Renders tools/interop/{strongswan,swanctl}.conf.in (with the test PKI) into the
directory, starts charon in the foreground, loads the config, prints the
swanctl command line to use, and stops charon on Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from charon_harness import CHARON_IP, IKESIM_IP, IKESIM_PORT, Charon  # noqa: E402
from conftest import _pem_files, pki  # noqa: E402


def main() -> None:
    """Run charon until interrupted."""
    workdir = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/charon-interop")
    c = Charon(workdir)
    c.write_config(charon_ip=CHARON_IP, ikesim_ip=IKESIM_IP, ikesim_port=IKESIM_PORT,
                   files=_pem_files(pki.__wrapped__()))  # type: ignore[attr-defined]
    c.start()
    try:
        print(c.load_all())
        print(f"log: {c.logfile}\nSTRONGSWAN_CONF={c.conf} swanctl --list-sas --uri unix://{c.vici}")
        while c.proc is not None and c.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        c.stop()


if __name__ == "__main__":
    main()
