#!/usr/bin/python3
"""Ten kinds of bad Sparkplug B message, from an edge node (paho-mqtt + the Sparkplug protobuf).

Usage: sparkplug_bad.py PB2_DIR PORT (sparkplug_client.py).
Edge node plant/edge1 publishes its birth (Temp = 20), then one bad message of each kind, then one
good NDATA (Temp = 42) last, and prints DONE.
"""
import time

from sparkplug_client import DOUBLE, STRING, UINT64, Edge

NOW = int(time.time() * 1000)
edge = Edge("edge1-bad")
edge.start()
p = edge.payload
edge.publish("NBIRTH", p([("bdSeq", None, UINT64, 0), ("Temp", 1, DOUBLE, 20.0)], timestamp=NOW))
edge.publish("NDATA", b"\xff\xff not protobuf")                                      # syntax
edge.publish("NFOO", p([(None, 1, DOUBLE, 1.0)], seq=250))                          # bad_topic
edge.publish("NDATA", p([(None, 1, DOUBLE, 1.0)], seq=300))                         # bad_seq
edge.publish("DDATA", p([(None, 5, DOUBLE, 1.0)]), "ghost")                         # no_birth
edge.publish("NDATA", p([(None, 99, DOUBLE, 1.0)]))                                 # unknown_alias
edge.publish("NDATA", p([(None, 1, STRING, "hot")]))                                # bad_value
edge.publish("NDATA", p([(None, 1, DOUBLE, None)]))                                 # missing_field
edge.publish("NDATA", p([(None, 1, DOUBLE, 1.0)], timestamp=None))                  # bad_time
edge.publish("NDATA", p([(None, 1, DOUBLE, float("nan"))]))                         # non_finite
edge.publish("NDATA", p([(None, 1, DOUBLE, 1.0)], timestamp=NOW + 86_400_000))      # future
edge.publish("NDATA", p([(None, 1, DOUBLE, 42.0)]))
edge.stop()
print("DONE", flush=True)
