#!/usr/bin/env python3
"""A fault-injecting TCP proxy for network fault tests between a role and the Kafka brokers.

This machine's kernel has no `netem` queueing discipline (CONFIG_NET_SCH_NETEM is not set:
`tc qdisc add dev lo root netem delay 100ms` says "Specified qdisc kind is unknown"), although
network namespaces, veth pairs, tbf and htb work. So delay, loss and partitions are made here, in
user space, one proxy per broker: `kafka.sh start --brokers 3 --advertise N=127.0.0.1:P` makes
broker N tell clients to connect to P, where a FaultProxy listens and forwards to the broker's
real client port (replication between brokers does not go through it).

Faults, changeable while connections are open:
  delay_ms       every chunk is held this long in each direction (order kept)
  loss           probability that a chunk is "lost": held for a TCP retransmission timeout
                 (200 ms, doubling for consecutive losses), which is what loss costs a TCP stream
  partition      True: bytes of open connections are swallowed in both directions (the client's
                 requests time out, as they do when packets vanish: no RST, no FIN) and new
                 connections are accepted but reach the broker only when the partition heals
                 (what they sent meanwhile arrives then, as TCP's retransmissions would deliver it)
  cut()          resets every open connection (RST), like a middlebox dropping state

Usable in-process (FaultProxy(...).start() runs on a thread) or as a command:
  fault_proxy.py --listen 127.0.0.1:P --target 127.0.0.1:Q [--delay-ms N] [--loss F]
Python 3 standard library only.
"""

import argparse
import random
import select
import socket
import struct
import threading
import time

RTO_S = 0.2


class FaultProxy:
    def __init__(self, listen_port, target, seed=0):
        self.target = target  # (host, port)
        self.delay_ms = 0
        self.loss = 0.0
        self.partition = False
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.conns = []  # (client socket, upstream socket or None)
        self.stats = {"accepted": 0, "bytes": 0, "lost_chunks": 0, "cuts": 0}
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", listen_port))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.stopped = False

    def start(self):
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def stop(self):
        self.stopped = True
        try:
            self.listener.close()
        except OSError:
            pass
        self.cut()

    def cut(self):
        """Resets every open connection."""
        with self.lock:
            conns, self.conns = self.conns, []
            self.stats["cuts"] += len(conns)
        for pair in conns:
            for s in pair:
                if s is None:
                    continue
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
                except OSError:
                    pass

    def _accept_loop(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.stats["accepted"] += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        # Partitioned: hold the connection open without reaching the broker until healed.
        while self.partition and not self.stopped:
            with self.lock:
                self.conns.append((client, None))
            time.sleep(0.1)
            with self.lock:
                if (client, None) not in self.conns:
                    return  # cut meanwhile
                self.conns.remove((client, None))
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        with self.lock:
            self.conns.append((client, upstream))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        losses = 0
        try:
            while not self.stopped:
                ready, _, _ = select.select([src], [], [], 0.2)
                if not ready:
                    continue
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                if self.partition:
                    continue  # vanishes
                hold = self.delay_ms / 1000.0
                if self.loss > 0 and self.rng.random() < self.loss:
                    losses += 1
                    self.stats["lost_chunks"] += 1
                    hold += RTO_S * (2 ** min(losses - 1, 5))
                else:
                    losses = 0
                if hold > 0:
                    time.sleep(hold)
                dst.sendall(data)
                self.stats["bytes"] += len(data)
        except (OSError, ValueError):  # reset by cut(), or closed by the other direction
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True, help="127.0.0.1:PORT")
    ap.add_argument("--target", required=True, help="HOST:PORT")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--loss", type=float, default=0.0)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    p = FaultProxy(int(a.listen.rsplit(":", 1)[1]), (host, int(port)))
    p.delay_ms, p.loss = a.delay_ms, a.loss
    p.start()
    print(f"fault_proxy: 127.0.0.1:{p.port} -> {a.target}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
