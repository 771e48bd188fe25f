#!/usr/bin/python3
"""A Sparkplug B edge node for the gateway's MQTT tests: paho-mqtt with the Sparkplug B protobuf.

Usage: sparkplug_edge.py PB2_DIR PORT
PB2_DIR holds sparkplug_b/sparkplug_b_pb2.py (protoc --python_out from proto/third_party).
Edge node plant/edge1 with device pump: births, data by alias, a device death and rebirth, a seq
gap (then waits for the gateway's NCMD rebirth request and answers it with new births), data,
and an NDEATH. Prints REBIRTH_REQUESTED when the request came and, last, EXPECT followed by every
mapped value it published (Temp and Flow), comma-separated.
"""
import sys
import threading
import time

sys.path.insert(0, sys.argv[1])
import paho.mqtt.client as mqtt  # noqa: E402
from sparkplug_b import sparkplug_b_pb2 as spb  # noqa: E402

PORT = int(sys.argv[2])
GROUP, EDGE, DEVICE = "plant", "edge1", "pump"
DOUBLE, BOOLEAN, UINT64 = 10, 11, 8
sent = []
seq = 0
rebirth = threading.Event()


def topic(kind, device=None):
    return "/".join(["spBv1.0", GROUP, kind, EDGE] + ([device] if device else []))


def payload(metrics, with_seq=True):
    global seq
    p = spb.Payload()
    p.timestamp = int(time.time() * 1000)
    if with_seq:
        p.seq = seq
        seq = (seq + 1) % 256
    for name, alias, dtype, value in metrics:
        m = p.metrics.add()
        if name:
            m.name = name
        if alias is not None:
            m.alias = alias
        m.datatype = dtype
        m.timestamp = p.timestamp
        if dtype == DOUBLE:
            m.double_value = value
        elif dtype == BOOLEAN:
            m.boolean_value = value
        else:
            m.long_value = value
    return p.SerializeToString()


def publish(client, t, data):
    client.publish(t, data, qos=1).wait_for_publish()


def births(client):
    global seq
    seq = 0
    publish(client, topic("NBIRTH"), payload([
        ("bdSeq", None, UINT64, 0), ("Node Control/Rebirth", None, BOOLEAN, False),
        ("Temp", 1, DOUBLE, 100.0)]))
    sent.append(100.0)
    publish(client, topic("DBIRTH", DEVICE), payload([("Flow", 2, DOUBLE, 200.0)]))
    sent.append(200.0)


def on_message(client, userdata, msg):
    p = spb.Payload()
    p.ParseFromString(msg.payload)
    if any(m.name == "Node Control/Rebirth" and m.boolean_value for m in p.metrics):
        rebirth.set()


client = mqtt.Client(client_id="edge1", clean_session=True)
death = spb.Payload()
bd = death.metrics.add()
bd.name, bd.datatype, bd.long_value = "bdSeq", UINT64, 0
client.will_set(topic("NDEATH"), death.SerializeToString(), qos=1)
client.on_message = on_message
client.connect("127.0.0.1", PORT, 30)
client.loop_start()
client.subscribe(topic("NCMD"), qos=1)
time.sleep(0.3)

births(client)
for i in range(1, 11):  # data by alias only
    publish(client, topic("NDATA"), payload([(None, 1, DOUBLE, 100.0 + i)]))
    publish(client, topic("DDATA", DEVICE), payload([(None, 2, DOUBLE, 200.0 + i)]))
    sent += [100.0 + i, 200.0 + i]
publish(client, topic("DDEATH", DEVICE), payload([]))
publish(client, topic("DBIRTH", DEVICE), payload([("Flow", 2, DOUBLE, 250.0)]))
publish(client, topic("DDATA", DEVICE), payload([(None, 2, DOUBLE, 251.0)]))
sent += [250.0, 251.0]
seq = (seq + 3) % 256  # three messages "lost": a gap
publish(client, topic("NDATA"), payload([(None, 1, DOUBLE, 150.0)]))
sent.append(150.0)
if rebirth.wait(15):
    print("REBIRTH_REQUESTED", flush=True)
    births(client)
    publish(client, topic("NDATA"), payload([(None, 1, DOUBLE, 160.0)]))
    sent.append(160.0)
publish(client, topic("NDEATH"), death.SerializeToString())
client.loop_stop()
client.disconnect()
print("EXPECT " + ",".join(str(v) for v in sent), flush=True)
