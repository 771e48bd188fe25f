#!/usr/bin/env python3
"""Checks tests/cluster/fault_proxy.py against a local echo server: it forwards, delays, holds
bytes during a partition and delivers again after healing, and cut() resets connections."""
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_proxy import FaultProxy  # noqa: E402


def echo_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve(c):
        while True:
            try:
                d = c.recv(4096)
            except OSError:
                return
            if not d:
                return
            c.sendall(d)

    def loop():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()


class FaultProxyTest(unittest.TestCase):
    def setUp(self):
        self.proxy = FaultProxy(0, echo_server()).start()

    def tearDown(self):
        self.proxy.stop()

    def roundtrip(self, sock, payload=b"ping", timeout=5.0):
        sock.settimeout(timeout)
        t0 = time.time()
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += sock.recv(4096)
        return got, time.time() - t0

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5)

    def test_forwards_and_delays_both_ways(self):
        s = self.connect()
        self.assertEqual(self.roundtrip(s)[0], b"ping")
        self.proxy.delay_ms = 150
        got, took = self.roundtrip(s)
        self.assertEqual(got, b"ping")
        self.assertGreaterEqual(took, 0.29)  # 150 ms each way

    def test_partition_swallows_and_new_connections_hang(self):
        s = self.connect()
        self.roundtrip(s)
        self.proxy.partition = True
        with self.assertRaises(socket.timeout):
            self.roundtrip(s, timeout=1.0)
        fresh = self.connect()  # accepted, but never reaches the server
        with self.assertRaises(socket.timeout):
            self.roundtrip(fresh, timeout=1.0)
        self.proxy.partition = False
        # What the new connection sent meanwhile arrives now, as TCP's retransmissions would.
        self.assertEqual(self.roundtrip(fresh, b"ping2")[0], b"pingping2")

    def test_cut_resets_open_connections(self):
        s = self.connect()
        self.roundtrip(s)
        self.proxy.cut()
        with self.assertRaises((ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            for _ in range(3):
                s.sendall(b"x")
                if not s.recv(1):
                    raise ConnectionResetError("closed")
                time.sleep(0.1)


if __name__ == "__main__":
    unittest.main()
