#!/usr/bin/env python3
"""Does nats-server leave acked messages in a work-queue stream after a
kill -9 restart (orphans: below the consumer's ack floor, never delivered
again)? Raw NATS protocol, no client library.

    benchmarks/faults/nats_orphans.py NATS_SERVER_BIN TRIALS

Each trial: publish 6, pull 6, ack 5 (each confirmed), kill -9 the server
0-2 s later (by trial), restart, and compare the stream's message count
with what its consumer will still deliver (num_pending + num_ack_pending);
the difference is orphans. Orphans stay, so a trial counts the new ones.
"""
import json, os, socket, subprocess, sys, tempfile, time, urllib.request

BIN, TRIALS = sys.argv[1], int(sys.argv[2])
D = tempfile.mkdtemp()
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
PORT, MPORT = free_port(), free_port()
CONF = os.path.join(D, "nats.conf")
open(CONF, "w").write(f'listen: 127.0.0.1:{PORT}\nhttp: 127.0.0.1:{MPORT}\njetstream {{ store_dir: "{D}/js" }}\n')

def start():
    p = subprocess.Popen([BIN, "-c", CONF], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{MPORT}/healthz?js-enabled-only=true").status == 200:
                return p
        except Exception:
            time.sleep(0.05)
    raise SystemExit("no server")

def jsz():
    v = json.load(urllib.request.urlopen(f"http://127.0.0.1:{MPORT}/jsz?consumers=true"))
    sd = v["account_details"][0]["stream_detail"][0]
    c = sd["consumer_detail"][0]
    return sd["state"], c

class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", PORT)); self.buf = b""; self.sid = 0
        self.line()  # INFO
        self.s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\nPING\r\n')
        while self.line() != b"PONG": pass
        self.s.sendall(b"SUB _INBOX.> 1\r\n")
    def line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        l, self.buf = self.buf.split(b"\r\n", 1); return l
    def take(self, n):
        while len(self.buf) < n + 2:
            self.buf += self.s.recv(65536)
        d, self.buf = self.buf[:n], self.buf[n + 2:]; return d
    def msg(self):
        """-> (subject, reply, payload) of the next MSG/HMSG."""
        while True:
            l = self.line()
            if l == b"PING": self.s.sendall(b"PONG\r\n"); continue
            p = l.split()
            if p[0] == b"MSG":
                reply = p[3] if len(p) == 5 else None
                return p[1], reply, self.take(int(p[-1]))
            if p[0] == b"HMSG":
                reply = p[3] if len(p) == 6 else None
                return p[1], reply, self.take(int(p[-1]))
    def pub(self, subj, data, reply=None):
        r = b" " + reply if reply else b""
        self.s.sendall(b"PUB " + subj + r + b" %d\r\n" % len(data) + data + b"\r\n")
    def req(self, subj, data):
        self.sid += 1; inbox = b"_INBOX.r%d" % self.sid
        self.pub(subj, data, inbox)
        while True:
            s, _, d = self.msg()
            if s == inbox: return d

server = start()
c = Conn()
c.req(b"$JS.API.STREAM.CREATE.S", json.dumps({"name": "S", "subjects": ["s"], "retention": "workqueue", "storage": "file", "discard": "new"}).encode())
c.req(b"$JS.API.CONSUMER.DURABLE.CREATE.S.D", json.dumps({"stream_name": "S", "config": {"durable_name": "D", "ack_policy": "explicit", "ack_wait": 3_000_000_000, "deliver_policy": "all"}}).encode())
orphaned = 0
before = 0  # orphans left by earlier trials (they stay)
for t in range(TRIALS):
    delay = [0, 0.01, 0.05, 0.2, 0.5, 1.0, 2.0][t % 7]
    n = 6
    for i in range(n):
        c.req(b"s", b"m%d.%d" % (t, i))
    c.sid += 1; inbox = b"_INBOX.p%d" % c.sid
    # Pull all n, ack the first n-1 (each confirmed: double ack), keep the last unacked, as the fleet's held ack.
    c.pub(b"$JS.API.CONSUMER.MSG.NEXT.S.D", json.dumps({"batch": n, "expires": 2_000_000_000}).encode(), inbox)
    got = []
    while len(got) < n:
        s, reply, d = c.msg()
        if s == b"s" and reply: got.append(reply)
    for reply in got[:-1]:
        c.sid += 1; ai = b"_INBOX.a%d" % c.sid
        c.pub(reply, b"+ACK", ai)
        while c.msg()[0] != ai: pass
    time.sleep(delay)
    server.kill(); server.wait()
    server = start()
    st, con = jsz()
    deliverable = con["num_pending"] + con["num_ack_pending"]
    orphan = st["messages"] - deliverable
    new = orphan - before
    orphaned += new > 0
    before = max(orphan, 0)
    print(f"trial {t}: kill -9 {delay:.2f} s after the last confirmed ack: stream messages {st['messages']} (first seq {st['first_seq']}, last {st['last_seq']}), "
          f"consumer pending {con['num_pending']} ack_pending {con['num_ack_pending']} ack floor {con['ack_floor']['stream_seq']}: "
          f"{orphan} orphans, {max(new, 0)} new", flush=True)
    c = Conn()
    # Drain: take and ack whatever the consumer still delivers, so each trial starts from an empty stream as far as the consumer knows.
    time.sleep(3.2)
    c.sid += 1; inbox = b"_INBOX.d%d" % c.sid
    c.pub(b"$JS.API.CONSUMER.MSG.NEXT.S.D", json.dumps({"batch": 100, "expires": 1_000_000_000}).encode(), inbox)
    c.s.settimeout(1.5)
    try:
        while True:
            s, reply, d = c.msg()
            if s == b"s" and reply:
                c.pub(reply, b"+ACK")
    except socket.timeout:
        pass
    c.s.settimeout(None)
server.kill(); server.wait()
print(f"{orphaned} of {TRIALS} restarts left new orphans ({BIN})")
