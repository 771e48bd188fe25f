#!/usr/bin/python3
"""Ten kinds of bad Sparkplug B message, from an edge node (paho-mqtt + the Sparkplug protobuf).

Usage: sparkplug_bad.py PB2_DIR PORT
Edge node plant/edge1 publishes its births, then one bad message of each kind, then one good
NDATA (Temp = 42) last, and prints DONE.
"""
import sys
import time

sys.path.insert(0, sys.argv[1])
import paho.mqtt.client as mqtt  # noqa: E402
from sparkplug_b import sparkplug_b_pb2 as spb  # noqa: E402

PORT = int(sys.argv[2])
DOUBLE, BOOLEAN, STRING, UINT64 = 10, 11, 12, 8
NOW = int(time.time() * 1000)
seq = 0


def msg(metrics, s=None, timestamp=NOW):
    """metrics: (name, alias, datatype, value); value None = no value; s: seq (default: next)."""
    global seq
    p = spb.Payload()
    if timestamp is not None:
        p.timestamp = timestamp
    if s is None:
        p.seq, seq = seq, (seq + 1) % 256
    else:
        p.seq = s
    for name, alias, dtype, value in metrics:
        m = p.metrics.add()
        if name:
            m.name = name
        if alias is not None:
            m.alias = alias
        m.datatype = dtype
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


client = mqtt.Client(client_id="edge1-bad", clean_session=True)
client.connect("127.0.0.1", PORT, 30)
client.loop_start()


def pub(kind, payload, device=None):
    t = "/".join(["spBv1.0", "plant", kind, "edge1"] + ([device] if device else []))
    client.publish(t, payload, qos=1).wait_for_publish()


pub("NBIRTH", msg([("bdSeq", None, UINT64, 0), ("Temp", 1, DOUBLE, 20.0)]))
pub("NDATA", b"\xff\xff not protobuf")                                   # syntax
pub("NFOO", msg([(None, 1, DOUBLE, 1.0)], s=250))                        # bad_topic
pub("NDATA", msg([(None, 1, DOUBLE, 1.0)], s=300))                       # bad_seq
pub("DDATA", msg([(None, 5, DOUBLE, 1.0)]), device="ghost")              # no_birth
pub("NDATA", msg([(None, 99, DOUBLE, 1.0)]))                             # unknown_alias
pub("NDATA", msg([(None, 1, STRING, "hot")]))                            # bad_value
pub("NDATA", msg([(None, 1, DOUBLE, None)]))                             # missing_field
pub("NDATA", msg([(None, 1, DOUBLE, 1.0)], timestamp=None))              # bad_time
pub("NDATA", msg([(None, 1, DOUBLE, float("nan"))]))                     # non_finite
pub("NDATA", msg([(None, 1, DOUBLE, 1.0)], timestamp=NOW + 86_400_000))  # future
pub("NDATA", msg([(None, 1, DOUBLE, 42.0)]))
client.loop_stop()
client.disconnect()
print("DONE", flush=True)
