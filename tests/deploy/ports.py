"""Loopback ports for the deploy end-to-end scripts' servers."""

import socket


def free_ports(n):
    """n distinct loopback ports that were free a moment ago. The sockets stay bound until all n
    are chosen: closed one by one, the kernel may hand out the same port twice (it did: Prometheus
    and the alerter's metrics got one port, and the alerter exited with "address in use")."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports
