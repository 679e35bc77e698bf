"""Start, configure, query and stop a real strongSwan charon for the interop tests.

charon runs in the foreground (``charon-systemd``, or ``/usr/lib/ipsec/charon``)
with a private ``strongswan.conf`` (``STRONGSWAN_CONF``) whose vici socket and
file log live in a temp dir; swanctl talks to it with ``--uri unix://...``.
Templates are in ``tools/interop/``. Every wait is bounded, and ``stop()``
always ends the process it started (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from ikesim.ike import events as ev
from ikesim.types import Address

TEMPLATES = Path(__file__).resolve().parents[2] / "tools" / "interop"
CHARON_CANDIDATES = ("/usr/sbin/charon-systemd", "/usr/lib/ipsec/charon", "/usr/libexec/ipsec/charon")
PLUGINS_LIBIPSEC = ("random nonce openssl pem pkcs1 pkcs8 x509 pubkey constraints kdf "
                    "kernel-libipsec kernel-netlink socket-default vici")
PLUGINS_NETLINK = "random nonce openssl pem pkcs1 pkcs8 x509 pubkey constraints kdf kernel-netlink socket-default vici"
SWANCTL_SUBDIRS = ("x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "private",
                   "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12")
PSK = "sim-interop-psk-0123456789"
CHARON_IP = "127.0.0.1"
IKESIM_IP = "127.0.0.2"
IKESIM_PORT = 1500
BIND = Address(IKESIM_IP, IKESIM_PORT)
NATT = Address(IKESIM_IP, 4500)
CHARON = Address(CHARON_IP, 500)
STEP = 5.0
"""Seconds any one exchange may take against charon on loopback."""

ENCR = {"aes128": ("AES_CBC", "128"), "aes256": ("AES_CBC", "256"),
        "aes128gcm16": ("AES_GCM_16", "128"), "aes256gcm16": ("AES_GCM_16", "256"),
        "chacha20poly1305": ("CHACHA20_POLY1305", None)}
"""vici's ``encr-alg`` and ``encr-keysize`` per ikesim keyword (no key size for a fixed-key cipher)."""
GROUP = {"x25519": "CURVE_25519", "modp2048": "MODP_2048", "ecp256": "ECP_256", "ecp384": "ECP_384",
         "ecp521": "ECP_521", "x448": "CURVE_448"}
PRF = {"prfsha256": "PRF_HMAC_SHA2_256", "prfsha384": "PRF_HMAC_SHA2_384"}
PFS_ESP = "aes128gcm16-x25519"
"""ESP proposal of the CHILD_SA that uses PFS (x25519) when created and rekeyed."""


def find_charon() -> str | None:
    """Path of a charon binary that runs in the foreground, or None."""
    for path in CHARON_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return None


def skip_reason() -> str | None:
    """Why the live-charon tests cannot run here, or None."""
    if find_charon() is None:
        return "no charon binary (apt-get install -y charon-systemd strongswan-swanctl libcharon-extra-plugins)"
    if shutil.which("swanctl") is None and not os.access("/usr/sbin/swanctl", os.X_OK):
        return "no swanctl (apt-get install -y strongswan-swanctl)"
    if os.geteuid() != 0:
        return "charon needs root (ports 500/4500, TUN/XFRM)"
    for port in (500, 4500, 4501):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((CHARON_IP, port))
            except OSError as exc:
                return f"UDP {CHARON_IP}:{port} is busy ({exc}); another IKE daemon is running"
    return None


def pem_files(pki: dict[str, object]) -> dict[str, bytes]:
    """The CA, charon's certificate and key of the ``pki`` fixture as swanctl files."""
    from cryptography.hazmat.primitives import serialization

    pem = serialization.Encoding.PEM
    key = pki["charon_key"]
    return {
        "x509ca/sim-ca.pem": pki["ca"].public_bytes(pem),  # type: ignore[attr-defined]
        "x509/charon-cert.pem": pki["charon_cert"].public_bytes(pem),  # type: ignore[attr-defined]
        "private/charon-key.pem": key.private_bytes(  # type: ignore[attr-defined]
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    }


def libipsec_available() -> bool:
    """True if the kernel-libipsec plugin is installed and a TUN device can be opened.

    ``IKESIM_INTEROP_KERNEL=netlink`` forces the kernel XFRM backend instead.
    """
    if os.environ.get("IKESIM_INTEROP_KERNEL", "") == "netlink":
        return False
    plugin = Path("/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so")
    return plugin.exists() and os.access("/dev/net/tun", os.R_OK | os.W_OK)


@dataclass
class ChildView:
    """One CHILD_SA as ``swanctl --list-sas --raw`` shows it."""

    name: str
    state: str
    spi_in: bytes
    spi_out: bytes
    raw: dict[str, object]


@dataclass
class IkeView:
    """One IKE_SA as ``swanctl --list-sas --raw`` shows it."""

    connection: str
    state: str
    spi_i: bytes
    spi_r: bytes
    raw: dict[str, object]
    children: list[ChildView] = field(default_factory=list)


def parse_vici_raw(text: str) -> list[tuple[str, dict[str, object]]]:
    """Parse swanctl ``--raw`` output (``name {k=v sect {..} list=[a b]}``) into (message, dict) pairs."""
    tokens = text.replace("{", " { ").replace("}", " } ").replace("[", " [ ").replace("]", " ] ").split()
    pos = 0

    def section() -> dict[str, object]:
        nonlocal pos
        out: dict[str, object] = {}
        while pos < len(tokens) and tokens[pos] != "}":
            tok = tokens[pos]
            pos += 1
            key, eq, value = tok.partition("=")
            if eq and value:
                out[key] = value
            elif eq:  # "key=" then a list
                assert tokens[pos] == "[", tokens[pos - 1:pos + 2]
                pos += 1
                items = []
                while tokens[pos] != "]":
                    items.append(tokens[pos])
                    pos += 1
                pos += 1
                out[key] = items
            else:
                assert tokens[pos] == "{", tokens[pos - 1:pos + 2]
                pos += 1
                out[tok] = section()
                pos += 1  # "}"
        return out

    messages = []
    while pos < len(tokens):
        # "list-sa event {...}" or "list-sas reply {...}"
        name = []
        while tokens[pos] != "{":
            name.append(tokens[pos])
            pos += 1
        pos += 1
        body = section()
        pos += 1
        messages.append((" ".join(name), body))
    return messages


def ike_views(text: str) -> list[IkeView]:
    """The IKE_SAs (with CHILD_SAs) in ``swanctl --list-sas --raw`` output."""
    out = []
    for msg, body in parse_vici_raw(text):
        if msg != "list-sa event":
            continue
        for conn, sa in body.items():
            assert isinstance(sa, dict)
            children = []
            for child in dict(sa.get("child-sas", {})).values():  # type: ignore[call-overload]
                children.append(ChildView(child["name"], child["state"], bytes.fromhex(child["spi-in"]),
                                          bytes.fromhex(child["spi-out"]), child))
            out.append(IkeView(conn, str(sa["state"]), bytes.fromhex(str(sa["initiator-spi"])),
                               bytes.fromhex(str(sa["responder-spi"])), sa, children))
    return out


class Charon:
    """One foreground charon with a private config dir; always call ``stop()`` (or use ``with``)."""

    def __init__(self, workdir: Path, *, binary: str | None = None, libipsec: bool | None = None,
                 port: int = 500, port_nat_t: int = 4500, netns: str | None = None) -> None:
        self.workdir = workdir
        self.binary = binary or find_charon() or "charon"
        self.libipsec = libipsec_available() if libipsec is None else libipsec
        self.vici = workdir / "charon.vici"
        self.logfile = workdir / "charon.log"
        self.conf = workdir / "strongswan.conf"
        self.swanctl_dir = workdir / "swanctl"
        self.port = port
        self.port_nat_t = port_nat_t
        self.netns = netns
        """Network namespace charon runs in (``ip netns exec``), None: this process's own."""
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_mark = 0

    # ------------------------------------------------------------------ config
    def write_config(self, *, charon_ip: str, ikesim_ip: str, ikesim_port: int,
                     files: dict[str, bytes] | None = None) -> None:
        """Render strongswan.conf and swanctl.conf from tools/interop/; write *files* (``x509/a.pem``: PEM)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        plugins = PLUGINS_LIBIPSEC if self.libipsec else PLUGINS_NETLINK
        self.conf.write_text(Template((TEMPLATES / "strongswan.conf.in").read_text()).substitute(
            plugins=plugins, port=self.port, port_nat_t=self.port_nat_t,
            logfile=self.logfile, vici=self.vici))
        for sub in SWANCTL_SUBDIRS:
            (self.swanctl_dir / sub).mkdir(parents=True, exist_ok=True)
        for rel, data in (files or {}).items():
            (self.swanctl_dir / rel).write_bytes(data)
        (self.swanctl_dir / "swanctl.conf").write_text(
            Template((TEMPLATES / "swanctl.conf.in").read_text()).substitute(
                charon_ip=charon_ip, ikesim_ip=ikesim_ip, ikesim_port=ikesim_port, psk=PSK))

    @property
    def env(self) -> dict[str, str]:
        """Environment for charon and swanctl: our strongswan.conf."""
        return {**os.environ, "STRONGSWAN_CONF": str(self.conf)}

    # ------------------------------------------------------------------ process
    def start(self, timeout: float = 10.0) -> None:
        """Start charon in the background and wait (bounded) for its vici socket."""
        self.vici.unlink(missing_ok=True)
        with open(self.workdir / "charon.stdout", "wb") as out:
            prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
            self.proc = subprocess.Popen([*prefix, self.binary], env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"charon exited with {self.proc.returncode}: {self.stdout()}")
            if self.vici.exists():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"charon did not create {self.vici} within {timeout} s")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the charon this object started: SIGTERM, then SIGKILL after *timeout*."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> Charon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stdout(self) -> str:
        """charon's own stdout/stderr."""
        path = self.workdir / "charon.stdout"
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------------ swanctl
    def swanctl(self, *args: str, timeout: float = 10.0) -> str:
        """Run ``swanctl ARGS --uri unix://<vici>``; return stdout; raise on failure."""
        swanctl = shutil.which("swanctl") or "/usr/sbin/swanctl"
        res = subprocess.run([swanctl, *args, "--uri", f"unix://{self.vici}"], env=self.env,
                             capture_output=True, timeout=timeout, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"swanctl {' '.join(args)} failed ({res.returncode}): {res.stdout}{res.stderr}")
        return res.stdout

    def load_all(self) -> str:
        """``swanctl --load-all --file <workdir>/swanctl/swanctl.conf``."""
        return self.swanctl("--load-all", "--file", str(self.swanctl_dir / "swanctl.conf"))

    def list_sas(self) -> list[IkeView]:
        """charon's IKE_SAs and CHILD_SAs (``swanctl --list-sas --raw``)."""
        return ike_views(self.swanctl("--list-sas", "--raw"))

    def list_sas_text(self) -> str:
        """Human-readable ``swanctl --list-sas`` (for failure messages)."""
        return self.swanctl("--list-sas")

    def initiate(self, child: str, ike: str, timeout: int = 5) -> str:
        """``swanctl --initiate --child CHILD --ike IKE`` (charon as the original initiator)."""
        return self.swanctl("--initiate", "--child", child, "--ike", ike, "--timeout", str(timeout),
                            timeout=timeout + 5)

    # ------------------------------------------------------------------ log
    def log(self) -> str:
        """The whole file log so far."""
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def log_since_mark(self) -> str:
        """The file log written since the last ``mark_log()``."""
        return self.log()[self._log_mark:]

    def mark_log(self) -> None:
        """Remember the current end of the log."""
        self._log_mark = len(self.log())

    def log_lines(self, needle: str) -> list[str]:
        """Summary log lines containing *needle* (hex dump lines excluded)."""
        return [line for line in self.log().splitlines() if needle in line and "bytes @" not in line]

    def problems(self, text: str | None = None) -> list[str]:
        """Lines of *text* (default: the whole log) showing charon rejected or failed to parse something."""
        bad = []
        for line in (self.log() if text is None else text).splitlines():
            low = line.lower()
            if ("parsing" in low and "failed" in low) or "integrity check failed" in low \
                    or "invalid" in low or "auth_failed" in low or "authentication_failed" in low \
                    or ("authentication of" in low and "failed" in low) or "verification failed" in low \
                    or "no acceptable proposal" in low or "invalid_syntax" in low \
                    or "ignoring" in low or "retransmit" in low:
                bad.append(line)
        return bad


# ---------------------------------------------------------------------- assertions shared by the tests
def charon_ike(charon: Charon, spi_i: bytes, spi_r: bytes) -> IkeView:
    """charon's IKE_SA with exactly these SPIs (asserts there is one)."""
    views = [v for v in charon.list_sas() if v.spi_i == spi_i and v.spi_r == spi_r]
    assert len(views) == 1, charon.list_sas_text()
    return views[0]


def installed(view: IkeView) -> dict[bytes, ChildView]:
    """charon's INSTALLED CHILD_SAs of *view*, keyed by charon's inbound SPI (= ikesim's outbound)."""
    return {c.spi_in: c for c in view.children if c.state == "INSTALLED"}


def assert_child_matches(view: IkeView, inst: ev.ChildSaInstalled, esp: str) -> ChildView:
    """charon has the CHILD_SA installed with mirrored SPIs and the same algorithms."""
    child = installed(view).get(inst.spi_out)
    assert child is not None, (inst.spi_out.hex(), view.children)
    assert child.spi_out == inst.spi_in
    alg = esp.split("-")
    encr, size = ENCR[alg[0]]
    assert (child.raw["encr-alg"], child.raw.get("encr-keysize")) == (encr, size)
    assert inst.encr == alg[0]
    if len(alg) > 1 and alg[-1] in GROUP:
        assert child.raw.get("dh-group") == GROUP[alg[-1]]
        assert inst.pfs_group == alg[-1]
    else:
        assert "dh-group" not in child.raw
        assert inst.pfs_group == "none"
    return child


def assert_log_clean(charon: Charon) -> None:
    """charon logged no parse error, integrity failure, invalid payload or AUTH failure since the mark."""
    bad = charon.problems(charon.log_since_mark())
    assert bad == [], "\n".join(bad[:20])


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS`` (iproute2), bounded."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)


def ip_must(*args: str) -> str:
    """``ip ARGS``, asserting it worked; its stdout."""
    res = ip(*args)
    assert res.returncode == 0, f"ip {' '.join(args)}: {res.stderr}"
    return res.stdout


def in_netns(netns: str, *args: str) -> str:
    """Run a command in namespace *netns* (``ip netns exec``), asserting it worked; its stdout."""
    res = subprocess.run(["ip", "netns", "exec", netns, *args], capture_output=True, text=True, timeout=10,
                         check=False)
    assert res.returncode == 0, f"{' '.join(args)}: {res.stderr}"
    return res.stdout


class NetnsUnavailable(Exception):
    """The namespace could not be created here (the caller skips)."""


@contextlib.contextmanager
def veth_netns(netns: str, ours: str, theirs: str, *, charon_cidr: str, charon_host: str,
               our_cidrs: tuple[str, ...], sysctls: tuple[str, ...] = ()) -> Iterator[str]:
    """charon's namespace *netns* joined to ours by the veth pair *ours* - *theirs*: *charon_cidr* on *theirs*,
    *charon_host*/32 on the namespace's ``lo``, *our_cidrs* on *ours*; IPv6 off in the namespace, plus *sysctls*
    (``key=value``, for ``all`` and ``default``). Raises NetnsUnavailable if the namespace cannot be made; removes
    both at the end."""
    ip("link", "del", ours)  # left over from an interrupted run, if any
    res = ip("netns", "add", netns)
    if res.returncode != 0:
        raise NetnsUnavailable(f"cannot create a network namespace: {res.stderr.strip()}")
    try:
        for key in ("all", "default"):
            in_netns(netns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
            for setting in sysctls:
                name, value = setting.split("=")
                in_netns(netns, "sysctl", "-qw", f"net.ipv4.conf.{key}.{name}={value}")
        ip_must("link", "add", ours, "type", "veth", "peer", "name", theirs, "netns", netns)
        ip_must("-n", netns, "link", "set", "lo", "up")
        ip_must("-n", netns, "addr", "add", charon_cidr, "dev", theirs)
        ip_must("-n", netns, "addr", "add", f"{charon_host}/32", "dev", "lo")
        ip_must("-n", netns, "link", "set", theirs, "up")
        for cidr in our_cidrs:
            ip_must("addr", "add", cidr, "dev", ours)
        ip_must("link", "set", ours, "up")
        yield netns
    finally:
        ip("netns", "del", netns)  # takes *theirs* and with it its peer *ours*
        ip("link", "del", ours)
