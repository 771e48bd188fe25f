"""Shared by the Sparkplug B edge clients of the gateway's MQTT tests (paho-mqtt + the protobuf).

sys.argv: PB2_DIR (holding sparkplug_b/sparkplug_b_pb2.py, protoc --python_out from
proto/third_party) and the broker's PORT.
"""
import sys
import time

sys.path.insert(0, sys.argv[1])
import paho.mqtt.client as mqtt  # noqa: E402
from sparkplug_b import sparkplug_b_pb2 as spb  # noqa: E402

PORT = int(sys.argv[2])
GROUP, EDGE = "plant", "edge1"
DOUBLE, BOOLEAN, STRING, UINT64 = 10, 11, 12, 8


class Edge:
    """Edge node GROUP/EDGE: its seq counter and its publishing client (QoS 1, waits for acks)."""

    def __init__(self, client_id, will=None):
        self.seq = 0
        self.client = mqtt.Client(client_id=client_id, clean_session=True)
        if will is not None:
            self.client.will_set(self.topic("NDEATH"), will, qos=1)

    def start(self):
        self.client.connect("127.0.0.1", PORT, 30)
        self.client.loop_start()

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()

    @staticmethod
    def topic(kind, device=None):
        return "/".join(["spBv1.0", GROUP, kind, EDGE] + ([device] if device else []))

    def payload(self, metrics, seq=None, timestamp="now", metric_times=True):
        """metrics: (name, alias, datatype, value), value None = none. seq None: the next one."""
        p = spb.Payload()
        if timestamp == "now":
            timestamp = int(time.time() * 1000)
        if timestamp is not None:
            p.timestamp = timestamp
        if seq is None:
            p.seq, self.seq = self.seq, (self.seq + 1) % 256
        else:
            p.seq = seq
        for name, alias, dtype, value in metrics:
            m = p.metrics.add()
            if name:
                m.name = name
            if alias is not None:
                m.alias = alias
            m.datatype = dtype
            if metric_times and timestamp is not None:
                m.timestamp = timestamp
            if value is None:
                continue
            if dtype == DOUBLE:
                m.double_value = value
            elif dtype == BOOLEAN:
                m.boolean_value = value
            elif dtype == STRING:
                m.string_value = value
            else:
                m.long_value = value
        return p.SerializeToString()

    def publish(self, kind, data, device=None):
        self.client.publish(self.topic(kind, device), data, qos=1).wait_for_publish()


def death_certificate(bd_seq=0):
    p = spb.Payload()
    m = p.metrics.add()
    m.name, m.datatype, m.long_value = "bdSeq", UINT64, bd_seq
    return p.SerializeToString()
