"""Drive flume's memcached front with pymemcache: python3 pymemcache_check.py HOST PORT"""
import sys
import time

from pymemcache.client.base import Client

host, port = sys.argv[1], int(sys.argv[2])
c = Client((host, port), default_noreply=False, connect_timeout=5, timeout=10)

c.flush_all()
assert c.get("missing") is None

# set / get, flags through a serializer-free client: bytes in, bytes out.
assert c.set("a", b"alpha") is True
assert c.get("a") == b"alpha", c.get("a")
assert c.set("bin", bytes(range(256))) is True
assert c.get("bin") == bytes(range(256))

# multi-get
c.set_many({"m1": b"1", "m2": b"2", "m3": b"3"})
got = c.get_many(["m1", "m2", "m3", "nope"])
assert got == {"m1": b"1", "m2": b"2", "m3": b"3"}, got

# gets / cas
value, cas = c.gets("a")
assert value == b"alpha" and cas is not None
assert c.cas("a", b"beta", cas) is True
assert c.cas("a", b"gamma", cas) is False  # stale cas: EXISTS
assert c.get("a") == b"beta"
assert c.cas("never-set", b"x", b"1") is None  # NOT_FOUND
_, cas2 = c.gets("a")
assert cas2 != cas

# incr / decr
c.set("n", b"10")
assert c.incr("n", 5) == 15
assert c.decr("n", 20) == 0
assert c.incr("missing-counter", 1) is None
assert c.incr("n", 2**64 - 1) == 2**64 - 1

# add / replace / append / prepend / delete
assert c.add("a", b"x") is False
assert c.add("fresh", b"x") is True
assert c.replace("fresh", b"y") is True
assert c.replace("ghost", b"y") is False
assert c.append("fresh", b"z") is True
assert c.prepend("fresh", b"w") is True
assert c.get("fresh") == b"wyz"
assert c.delete("fresh") is True
assert c.delete("fresh") is False

# touch and expiry
c.set("t", b"v", expire=100)
assert c.touch("t", expire=-1) is True
assert c.get("t") is None
assert c.touch("t", expire=10) is False
c.set("short", b"v", expire=1)
assert c.get("short") == b"v"
time.sleep(2.1)
assert c.get("short") is None

# noreply writes are still durable and ordered
c.set("q", b"1", noreply=True)
assert c.get("q") == b"1"

# flush_all
c.flush_all()
assert c.get_many(["a", "n", "q", "m1"]) == {}

stats = c.stats()
assert b"version" in stats or "version" in stats, stats
print(c.version())
print("ok")
