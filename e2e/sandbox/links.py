"""Links between samizdat and the members: a real proxy (Toxiproxy, built from its Go module) in front of
each member's API server, and the profiles that degrade a link the way long international links and
national firewalls do. Opt-in (`up --links`): without it samizdat talks to the members directly.

Toxiproxy relays TCP, so TLS passes through untouched: samizdat's kubeconfig for a member names the
proxy's address (`samizdat join --member-server`), the member's certificate names 127.0.0.1, and the
admin kubeconfigs the tests and faults use keep talking to the member directly.

What each profile does, exactly (see docs/links.md for why it stands for what it stands for):

| profile | toxics |
|---|---|
| `wan` | 150 ms ± 125 ms latency each way on every chunk (RTT 50-550 ms, about 300 ± 250 ms), and stalls: a shaper process opens, at random (Poisson, 3 per minute on average), a 1 s window in which every chunk is held up to 1 s more, as TCP holds segments behind a lost one until its retransmission time-out (the window covers about 5 % of the time) |
| `throttled` | 64 KB/s each way, per connection |
| `resets` | every connection reset every 10 s (a shaper process adds a `reset_peer` toxic for 0.2 s) |
| `half-open` | connections stay open, bytes vanish both ways (`timeout` toxic, timeout 0) |

Loss is emulated, not dropped: this kernel has no netem, and dropping real packets needs a network
namespace between two interfaces; what an application sees of a lossy link is stalls, which is what
the shaper makes.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.sandbox import toolchain
from e2e.sandbox.launcher import alive, kill_recorded

API_OFFSET = 690  # Toxiproxy's own HTTP API, at the sandbox's port base plus this
PROXY_OFFSET = 600  # member index i is proxied at port base + this + i
PROFILES = ("wan", "throttled", "resets", "half-open")

WAN_LATENCY_MS, WAN_JITTER_MS = 150, 125
STALL_S, STALLS_PER_S = 1.0, 0.05  # 1 s windows, on average one every 20 s: about 5 % of the time
RESET_EVERY_S, RESET_FOR_S = 10.0, 0.2
THROTTLE_KBPS = 64


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: str  # "downstream": member -> samizdat; "upstream": samizdat -> member
    attributes: dict[str, int]

    def body(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "stream": self.stream, "toxicity": 1.0,
                "attributes": self.attributes}


def _both(name: str, kind: str, **attributes: int) -> tuple[Toxic, Toxic]:
    return (Toxic(f"{name}-down", kind, "downstream", attributes), Toxic(f"{name}-up", kind, "upstream", attributes))


# The toxics a profile keeps on the link; the shaper adds and removes the rest on its timer.
STANDING: dict[str, tuple[Toxic, ...]] = {
    "wan": _both("wan", "latency", latency=WAN_LATENCY_MS, jitter=WAN_JITTER_MS),
    "throttled": _both("throttled", "bandwidth", rate=THROTTLE_KBPS),
    "resets": (),
    "half-open": _both("half-open", "timeout", timeout=0),
}
SHAPED = frozenset({"wan", "resets"})


class Links:
    """The Toxiproxy server of one sandbox and the proxy of each member."""

    def __init__(self, directory: Path, port_base: int) -> None:
        self.directory = directory
        self.api = f"http://127.0.0.1:{port_base + API_OFFSET}"
        self.port_base = port_base

    @property
    def pid_file(self) -> Path:
        return self.directory / "toxiproxy.pid"

    def running(self) -> bool:
        return self.pid_file.exists() and alive(int(self.pid_file.read_text()))

    def proxy_port(self, index: int) -> int:
        return self.port_base + PROXY_OFFSET + index

    def start(self) -> None:
        server = toolchain.ensure_tool("toxiproxy")
        log = (self.directory / "toxiproxy.log").open("ab")
        process = subprocess.Popen(
            [str(server), "-host", "127.0.0.1", "-port", str(self.port_base + API_OFFSET)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self._call("GET", "/version")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"toxiproxy did not answer on {self.api} within 20s (see {log.name})")

    def stop(self) -> None:
        for shaper in self.directory.glob("shaper-*.pid"):
            kill_recorded(shaper)
        kill_recorded(self.pid_file)

    def add_proxy(self, member: str, index: int, upstream_port: int) -> str:
        """Proxy `member`'s API server; returns the URL samizdat is to reach it at."""
        port = self.proxy_port(index)
        self._call("POST", "/proxies", {"name": member, "listen": f"127.0.0.1:{port}",
                                        "upstream": f"127.0.0.1:{upstream_port}", "enabled": True})
        return f"https://127.0.0.1:{port}"

    def degrade(self, member: str, profile: str) -> None:
        """Put `profile` on the member's link (what was there before is cleared first)."""
        if profile not in PROFILES:
            raise ValueError(f"unknown link profile {profile!r}; one of {', '.join(PROFILES)}")
        self.heal(member)
        for toxic in STANDING[profile]:
            self.add(member, toxic)
        if profile in SHAPED:
            log = (self.directory / f"shaper-{member}.log").open("ab")
            process = subprocess.Popen(
                [sys.executable, "-m", "e2e.sandbox.links", "shape", member, profile, "--api", self.api],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
            log.close()
            (self.directory / f"shaper-{member}.pid").write_text(str(process.pid))

    def heal(self, member: str) -> None:
        """The member's link clean again: its shaper stopped, every toxic removed."""
        kill_recorded(self.directory / f"shaper-{member}.pid")
        for toxic in self._call("GET", f"/proxies/{member}/toxics") or []:
            self.remove(member, toxic["name"])

    def add(self, member: str, toxic: Toxic) -> None:
        self._call("POST", f"/proxies/{member}/toxics", toxic.body())

    def remove(self, member: str, name: str) -> None:
        try:
            self._call("DELETE", f"/proxies/{member}/toxics/{name}")
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise

    def toxics(self, member: str) -> list[str]:
        return [toxic["name"] for toxic in self._call("GET", f"/proxies/{member}/toxics") or []]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(self.api + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            raw = answer.read()
        return json.loads(raw) if raw else None


def shape(links: Links, member: str, profile: str, seed: int | None = None) -> None:
    """Until killed: the timed part of `profile` on the member's link (stalls for `wan`, resets for
    `resets`)."""
    rng = random.Random(seed)
    stop = False

    def halt(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, halt)
    while not stop:
        if profile == "wan":
            time.sleep(rng.expovariate(STALLS_PER_S))
            toxics = _both("stall", "latency", latency=int(STALL_S * 1000))
            hold = STALL_S
        else:
            time.sleep(RESET_EVERY_S - RESET_FOR_S)
            toxics = _both("reset", "reset_peer", timeout=0)
            hold = RESET_FOR_S
        for toxic in toxics:
            links.add(member, toxic)
        time.sleep(hold)
        for toxic in toxics:
            links.remove(member, toxic.name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.sandbox.links")
    commands = parser.add_subparsers(dest="command", required=True)
    shaper = commands.add_parser("shape", help="the timed part of a profile, until SIGTERM (started by degrade)")
    shaper.add_argument("member")
    shaper.add_argument("profile", choices=sorted(SHAPED))
    shaper.add_argument("--api", required=True)
    args = parser.parse_args(argv)
    links = Links(Path("."), 0)
    links.api = args.api
    shape(links, args.member, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
