#!/usr/bin/python3
"""A Sparkplug B edge node for the gateway's MQTT tests: paho-mqtt with the Sparkplug B protobuf.

Usage: sparkplug_edge.py PB2_DIR PORT (sparkplug_client.py).
Edge node plant/edge1 with device pump: births, data by alias, a device death and rebirth, a seq
gap (then waits for the gateway's NCMD rebirth request and answers it with new births), data,
and an NDEATH. Prints REBIRTH_REQUESTED when the request came and, last, EXPECT followed by every
mapped value it published (Temp and Flow), comma-separated.
"""
import threading

from sparkplug_client import BOOLEAN, DOUBLE, UINT64, Edge, death_certificate, spb

DEVICE = "pump"
sent = []
rebirth = threading.Event()
edge = Edge("edge1", will=death_certificate())


def births():
    edge.seq = 0
    edge.publish("NBIRTH", edge.payload([
        ("bdSeq", None, UINT64, 0), ("Node Control/Rebirth", None, BOOLEAN, False),
        ("Temp", 1, DOUBLE, 100.0)]))
    edge.publish("DBIRTH", edge.payload([("Flow", 2, DOUBLE, 200.0)]), DEVICE)
    sent.extend([100.0, 200.0])


def on_message(client, userdata, msg):
    p = spb.Payload()
    p.ParseFromString(msg.payload)
    if any(m.name == "Node Control/Rebirth" and m.boolean_value for m in p.metrics):
        rebirth.set()


edge.client.on_message = on_message
edge.start()
edge.client.subscribe(edge.topic("NCMD"), qos=1)
threading.Event().wait(0.3)

births()
for i in range(1, 11):  # data by alias only
    edge.publish("NDATA", edge.payload([(None, 1, DOUBLE, 100.0 + i)]))
    edge.publish("DDATA", edge.payload([(None, 2, DOUBLE, 200.0 + i)]), DEVICE)
    sent += [100.0 + i, 200.0 + i]
edge.publish("DDEATH", edge.payload([]), DEVICE)
edge.publish("DBIRTH", edge.payload([("Flow", 2, DOUBLE, 250.0)]), DEVICE)
edge.publish("DDATA", edge.payload([(None, 2, DOUBLE, 251.0)]), DEVICE)
sent += [250.0, 251.0]
edge.seq = (edge.seq + 3) % 256  # three messages "lost": a gap
edge.publish("NDATA", edge.payload([(None, 1, DOUBLE, 150.0)]))
sent.append(150.0)
if rebirth.wait(15):
    print("REBIRTH_REQUESTED", flush=True)
    births()
    edge.publish("NDATA", edge.payload([(None, 1, DOUBLE, 160.0)]))
    sent.append(160.0)
edge.publish("NDEATH", death_certificate())
edge.stop()
print("EXPECT " + ",".join(str(v) for v in sent), flush=True)
