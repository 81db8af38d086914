"""End to end: three canary-proxy replicas sharing their rollout state through a real 3-member
etcd cluster on 127.0.0.1 (state_store: {type: etcd}).

What the fleet promises, each checked with the real binaries: a change made through any
replica is routed by all of them; concurrent mutations through different replicas are each
applied once or refused (409), never lost or doubled; N replicas reloading the same new file
start one rollout; only the leader runs the timers, a new leader takes over a timed pause at its
deadline, and a deposed (frozen) leader commits nothing; with etcd gone every replica keeps
routing exactly as before (fail static), refuses mutations with 503, and resyncs with no shift
when etcd returns; a replica starts from its state_file cache while etcd is down; losing one
etcd member of three changes nothing.

Timing is recorded (stderr), never a pass criterion beyond generous bounds.
"""

import json
import os
import re
import signal
import sys
import threading
import time
import unittest

from harness import DEADLINE, E2ETestCase, Proxy, ctl, make_config, poll, route
from etcd_cluster import EtcdCluster

PREFIX = "/canary-e2e/"
ROUTE = "canary-demo"
# One key per route: <prefix>routes/<name>, holding the route's state as a state file would.
ROUTE_KEY = PREFIX + "routes/" + ROUTE
# Short enough that a new leader takes over within a few seconds, long enough for etcd's
# minimum lease TTL (1.5 x the election timeout of the test cluster: 750 ms).
LEASE_TTL_S = 2
# How long a change may take to reach every replica before the test calls it lost (the fleet
# aims at 100 ms; this only bounds the wait).
PROPAGATION_BOUND_S = 5.0
# A takeover needs the old lease to run out, then a campaign.
TAKEOVER_BOUND_S = LEASE_TTL_S + 8.0

INDEFINITE_PAUSES = [
    {"setWeight": 10}, {"pause": {}},
    {"setWeight": 20}, {"pause": {}},
    {"setWeight": 30}, {"pause": {}},
    {"setWeight": 40}, {"pause": {}},
]


def note(text):
    sys.stderr.write(f"[fleet] {text}\n")
    sys.stderr.flush()


def metric_value(proxy, name):
    """The value of an unlabelled sample `name` in GET /metrics, or None when absent."""
    r = proxy.admin("GET", "/metrics")
    if r.status != 200:
        return None
    m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", r.text, re.M)
    return float(m.group(1)) if m else None


def cluster(proxy):
    r = proxy.admin("GET", "/api/v1/cluster")
    if r.status != 200:
        raise AssertionError(f"GET /api/v1/cluster: {r.status} {r.text}")
    return r.json()


def routing(status):
    """What decides a replica's routing, from its status."""
    return (status.get("phase"), status.get("stable"), status.get("canary"), status.get("step"),
            status.get("weight"))


class FleetTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.etcd = EtcdCluster(self.path("etcd"), size=3)
        self.addCleanup(self.etcd.stop)
        self.etcd.start()
        self.blue, self.green = self.blue_green()

    # ------------------------------------------------------------ replicas

    def replica_config(self, i, steps, upstream="blue"):
        return make_config(
            {"blue": self.blue.endpoint, "green": self.green.endpoint},
            [route(upstream=upstream, steps=steps)],
            extra={"state_store": {"type": "etcd", "etcd": {
                "endpoints": self.etcd.endpoints,
                "prefix": PREFIX,
                "lease_ttl": f"{LEASE_TTL_S}s",
                "dial_timeout": "1s",
                "replica_id": f"r{i}",
            }}})

    def start_replica(self, i, steps, upstream="blue"):
        workdir = self.path(f"r{i}")
        os.makedirs(workdir, exist_ok=True)
        p = Proxy(workdir, self.replica_config(i, steps, upstream))
        p.replica_id = f"r{i}"
        self.addCleanup(self._dump_logs_on_failure, p)
        self.addCleanup(p.stop)
        return p.start()

    def start_fleet(self, steps, n=3):
        return [self.start_replica(i, steps) for i in range(n)]

    def wait_all(self, replicas, pred, what, timeout=PROPAGATION_BOUND_S):
        """Polls every replica's status until pred holds on each; returns the seconds each
        took (measured from the call)."""
        t0 = time.monotonic()
        delays = {}
        for p in replicas:
            p.wait_status(pred, timeout=max(0.5, timeout - (time.monotonic() - t0)),
                          what=f"{what} on {p.replica_id}")
            delays[p.replica_id] = time.monotonic() - t0
        return delays

    def wait_same_status(self, replicas, timeout=PROPAGATION_BOUND_S):
        """Every replica reports the same routing and the same event history; returns them."""
        def check():
            statuses = [p.status() for p in replicas]
            events = [p.events()["events"] for p in replicas]
            if all(routing(s) == routing(statuses[0]) for s in statuses) and \
                    all(e == events[0] for e in events):
                return statuses[0], events[0]
            return None
        return poll(check, timeout=timeout, what="the same status and events on every replica")

    def leader_of(self, replicas, exclude=None, timeout=TAKEOVER_BOUND_S):
        """The one leader every replica in `replicas` agrees on (not `exclude`)."""
        ids = {p.replica_id for p in replicas}

        def check():
            leaders = {cluster(p).get("leader") for p in replicas}
            if len(leaders) == 1:
                (leader,) = leaders
                if leader in ids and leader != exclude:
                    return leader
            return None
        return poll(check, timeout=timeout, interval=0.05,
                    what=f"one leader agreed by {sorted(ids)} (not {exclude})")

    def start_rollout(self, replicas, via=0):
        replicas[via].op(ROUTE, "upstream", {"upstream": "green"})
        self.wait_all(replicas, lambda s: s.get("canary") == "green" and s.get("phase") == "Paused",
                      "the rollout paused at its first pause")

    def assertSplit(self, replicas, weight, n=100):
        """Smooth WRR: every window of 100 weight-decided requests holds exactly `weight`
        canary requests on each replica (one worker each)."""
        expected = {c: k for c, k in (("blue", n - weight * n // 100), ("green", weight * n // 100))
                    if k}
        for p in replicas:
            self.assertEqual(p.colors(n), expected, f"split of {p.replica_id}")

    # ------------------------------------------------------------ the cases

    def test_step_through_one_replica_seen_by_all_and_in_etcd(self):
        replicas = self.start_fleet(INDEFINITE_PAUSES)
        self.start_rollout(replicas, via=0)
        self.assertSplit(replicas, 10)

        # A promote through r1 (not necessarily the leader): every replica routes 20 %.
        replicas[1].op(ROUTE, "promote")
        delays = self.wait_all(replicas, lambda s: s.get("weight") == 20 and s.get("step") == 3,
                               "weight 20 at step 3")
        note("promote through r1 seen by " +
             ", ".join(f"{k} after {v * 1000:.0f} ms" for k, v in sorted(delays.items())))
        self.assertSplit(replicas, 20)
        status, events = self.wait_same_status(replicas)
        self.assertEqual(status["stable"], "blue")

        # The shared state is in etcd, one key per route, readable with etcdctl.
        kvs = self.etcd.get_prefix(PREFIX)
        self.assertIn(ROUTE_KEY, kvs)
        stored = json.loads(kvs[ROUTE_KEY][0])
        state = stored.get("routes", {}).get(ROUTE, stored)
        self.assertEqual((state.get("canary"), state.get("step"), state.get("weight")),
                         ("green", 3, 20), stored)
        # Every replica registered itself; canaryctl shows them, the leader marked.
        # (Each replica refreshes its list of the others a few times per lease TTL.)
        poll(lambda: {p["id"] for p in cluster(replicas[2])["replicas"]} == {"r0", "r1", "r2"},
             timeout=PROPAGATION_BOUND_S, what="r0, r1 and r2 registered")
        leader = self.leader_of(replicas)
        r = ctl(replicas[2].admin_url, "cluster")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Replica:  r2\n", r.stdout)
        self.assertIn(f"Leader:   {leader}\n", r.stdout)
        self.assertRegex(r.stdout, r"Store:    etcd, connected, revision \d+\n")
        self.assertRegex(r.stdout, rf"(?m)^{leader}\b.*  \*  ")
        for rid in ("r0", "r1", "r2"):
            self.assertRegex(r.stdout, rf"(?m)^{rid}\b")
        r = ctl(replicas[2].admin_url, "cluster", "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["replica"], "r2")

    def test_concurrent_mutations_through_different_replicas(self):
        replicas = self.start_fleet(INDEFINITE_PAUSES)
        self.start_rollout(replicas)
        _, before = self.wait_same_status(replicas)

        def race(calls):
            """Runs (replica, action, body) calls at once; returns their status codes."""
            codes = [None] * len(calls)
            barrier = threading.Barrier(len(calls))

            def one(k, p, action, body):
                barrier.wait(DEADLINE)
                codes[k] = p.op(ROUTE, action, body, expect=None).status
            threads = [threading.Thread(target=one, args=(k, *c)) for k, c in enumerate(calls)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(DEADLINE * 3)
            return codes

        # Three manual weights at once: each 200 is one event, the last event is the weight.
        weights = [11, 22, 33]
        codes = race([(replicas[k], "weight", {"weight": w}) for k, w in enumerate(weights)])
        note(f"concurrent set-weight answers: {codes}")
        for c in codes:
            self.assertIn(c, (200, 409))
        status, events = self.wait_same_status(replicas)
        new = [e for e in events[len(before):]
               if e.get("cause") == "api" and e.get("from") == e.get("to") == "Paused"]
        applied = sorted(w for w, c in zip(weights, codes) if c == 200)
        self.assertEqual(sorted(e["weight"] for e in new), applied, new)
        self.assertTrue(applied, codes)
        self.assertEqual(status["weight"], new[-1]["weight"])
        self.assertSplit(replicas, status["weight"])

        # Six promotes at once (two per replica) on four pauses: each 200 moves exactly one
        # pause on, the rest are refused once the rollout completes.
        before = events
        codes = race([(replicas[k % 3], "promote", None) for k in range(6)])
        note(f"concurrent promote answers: {codes}")
        for c in codes:
            self.assertIn(c, (200, 409))
        ok = codes.count(200)
        self.assertGreaterEqual(ok, 1)
        status, events = self.wait_same_status(replicas)
        promoted = [e for e in events[len(before):]
                    if e.get("cause") == "api" and e.get("from") == "Paused"
                    and e.get("to") == "Progressing"]
        self.assertEqual(len(promoted), ok, events[len(before):])
        if ok >= 4:
            self.assertEqual(ok, 4)
            self.assertEqual((status["phase"], status["stable"], status["canary"]),
                             ("Healthy", "green", None))
        else:
            self.assertEqual((status["phase"], status["step"], status["weight"]),
                             ("Paused", 1 + 2 * ok, 10 * (ok + 1)))

    def test_replicas_reloading_one_changed_file_start_one_rollout(self):
        replicas = self.start_fleet(INDEFINITE_PAUSES)
        for p in replicas:
            p.write_config(self.replica_config(int(p.replica_id[1:]), INDEFINITE_PAUSES,
                                               upstream="green"))
        codes = [None] * len(replicas)

        def reload(k):
            codes[k] = replicas[k].admin("POST", "/api/v1/config/reload").status
        threads = [threading.Thread(target=reload, args=(k,)) for k in range(len(replicas))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE * 3)
        self.assertEqual(codes, [200, 200, 200])
        self.wait_all(replicas, lambda s: s.get("canary") == "green" and s.get("phase") == "Paused",
                      "the rollout to green")
        status, events = self.wait_same_status(replicas)
        started = [e for e in events if e.get("from") == "Healthy" and e.get("to") == "Progressing"]
        self.assertEqual(len(started), 1, events)
        self.assertEqual((status["step"], status["weight"]), (1, 10))
        self.assertSplit(replicas, 10)

    def test_leader_killed_during_timed_pause_survivors_finish_it(self):
        steps = [{"setWeight": 20}, {"pause": {"duration": "3s"}},
                 {"setWeight": 50}, {"pause": {}}]
        replicas = self.start_fleet(steps)
        leader = self.leader_of(replicas)
        replicas[0].op(ROUTE, "upstream", {"upstream": "green"})
        status = replicas[0].wait_status(
            lambda s: s.get("phase") == "Paused" and s.get("step") == 1, what="the timed pause")
        deadline = time.time() + float(status.get("pause_remaining_s") or 3)
        by_id = {p.replica_id: p for p in replicas}
        by_id[leader].kill9()
        survivors = [p for p in replicas if p.replica_id != leader]
        note(f"killed leader {leader}; pause deadline in {deadline - time.time():.2f} s")

        self.wait_all(survivors, lambda s: s.get("weight") == 50 and s.get("step") == 3,
                      "the timed pause finished by a survivor",
                      timeout=deadline - time.time() + TAKEOVER_BOUND_S)
        finished = time.time()
        note(f"survivors finished the pause {finished - deadline:+.2f} s after its deadline")
        # Not before its deadline (1 s for the granularity of pause_remaining_s and clocks).
        self.assertGreaterEqual(finished, deadline - 1.0)
        new_leader = self.leader_of(survivors, exclude=leader)
        self.assertNotEqual(new_leader, leader)
        status, events = self.wait_same_status(survivors)
        self.assertEqual(status["phase"], "Paused")
        # The pause ended once: one "step 2/4 completed" event, by the timer.
        done = [e for e in events if e.get("step") == 2 and e.get("cause") == "timer"]
        self.assertEqual(len(done), 1, events)

    def test_frozen_leader_commits_nothing(self):
        steps = [{"setWeight": 20}, {"pause": {"duration": "3s"}},
                 {"setWeight": 50}, {"pause": {}}]
        replicas = self.start_fleet(steps)
        leader = self.leader_of(replicas)
        by_id = {p.replica_id: p for p in replicas}
        frozen = by_id[leader]
        survivors = [p for p in replicas if p is not frozen]
        survivors[0].op(ROUTE, "upstream", {"upstream": "green"})
        self.wait_all(replicas, lambda s: s.get("phase") == "Paused" and s.get("step") == 1,
                      "the timed pause")
        # Frozen past its lease while its timed pause comes due: when it wakes up it still
        # believes it leads and that the pause is over.
        frozen.process.signal(signal.SIGSTOP)
        self.addCleanup(frozen.process.signal, signal.SIGCONT)
        new_leader = self.leader_of(survivors, exclude=leader)
        note(f"froze leader {leader}; new leader {new_leader}")
        self.wait_all(survivors, lambda s: s.get("weight") == 50 and s.get("step") == 3,
                      "the pause finished by the new leader", timeout=TAKEOVER_BOUND_S)
        # A change the frozen replica has not seen: abort.
        survivors[0].op(ROUTE, "abort")
        status, events = self.wait_same_status(survivors)
        before = self.etcd.get_prefix(ROUTE_KEY)[ROUTE_KEY]

        frozen.process.signal(signal.SIGCONT)
        # It learns it no longer leads and takes the fleet's state, unchanged by it.
        poll(lambda: cluster(frozen).get("leader") == new_leader, timeout=TAKEOVER_BOUND_S,
             what=f"{leader} seeing the new leader {new_leader}")
        frozen.wait_status(lambda s: routing(s) == routing(status), timeout=PROPAGATION_BOUND_S,
                           what="the fleet's state on the woken replica")
        self.assertEqual(frozen.events()["events"], events)
        after = self.etcd.get_prefix(ROUTE_KEY)[ROUTE_KEY]
        self.assertEqual(after, before, "the woken leader wrote the route's key")
        for p in survivors:
            self.assertEqual(routing(p.status()), routing(status))

    def test_etcd_down_fail_static_then_resync_and_start_from_cache(self):
        replicas = self.start_fleet(INDEFINITE_PAUSES)
        self.start_rollout(replicas)
        status, events = self.wait_same_status(replicas)
        for p in replicas:
            poll(lambda p=p: metric_value(p, "canary_proxy_state_store_up") == 1,
                 what=f"store up on {p.replica_id}")
        self.assertSplit(replicas, 10)

        # Every member gone.
        self.etcd.stop()
        for p in replicas:
            poll(lambda p=p: metric_value(p, "canary_proxy_state_store_up") == 0,
                 timeout=TAKEOVER_BOUND_S, what=f"store down on {p.replica_id}")
            self.assertEqual(p.status().get("store"), "disconnected")
            self.assertEqual(p.admin("GET", "/readyz").status, 200)
        self.assertSplit(replicas, 10)
        for p in replicas:
            body = self.assertApiError(p.op(ROUTE, "promote", expect=None), 503)
            self.assertTrue(body["error"].startswith("state store unavailable"), body)
        for p in replicas:
            self.assertEqual(routing(p.status()), routing(status))

        # A replica (re)started while etcd is down serves from its state_file cache.
        replicas[2].restart()
        replicas[2].process.wait_for_log(r"serving the cached rollout state")
        self.assertEqual(routing(replicas[2].status()), routing(status))
        self.assertSplit(replicas[2:], 10)

        # etcd back: every replica reconnects, nothing shifts, mutations work again.
        for m in self.etcd.members:
            m.start(self.etcd.initial_cluster)
        self.etcd.wait_healthy()
        for p in replicas:
            poll(lambda p=p: metric_value(p, "canary_proxy_state_store_up") == 1,
                 timeout=TAKEOVER_BOUND_S, what=f"store up again on {p.replica_id}")
        resynced, after = self.wait_same_status(replicas)
        self.assertEqual(routing(resynced), routing(status))
        self.assertEqual(after, events)
        self.assertSplit(replicas, 10)
        replicas[2].op(ROUTE, "promote")
        self.wait_all(replicas, lambda s: s.get("weight") == 20, "weight 20 after the outage")

    def test_one_etcd_member_of_three_lost_changes_nothing(self):
        replicas = self.start_fleet(INDEFINITE_PAUSES)
        self.start_rollout(replicas)
        self.leader_of(replicas)
        # The first endpoint of every replica's list: their connections must move.
        self.etcd.stop_member(0)
        first = replicas[1].op(ROUTE, "promote", expect=None)
        # The rest is checked whatever the first answer was (a 503 is retried, bounded), so
        # that one failure does not hide the others; the first answer is asserted last.
        if first.status != 200:
            poll(lambda: replicas[1].op(ROUTE, "promote", expect=None).status == 200,
                 timeout=PROPAGATION_BOUND_S, interval=0.1, what="a promote with 2 of 3 members")
        self.wait_all(replicas, lambda s: s.get("weight") == 20, "weight 20 with 2 of 3 members")
        self.assertSplit(replicas, 20)
        for p in replicas:
            self.assertEqual(metric_value(p, "canary_proxy_state_store_up"), 1)
        # Still one leader for all (the lease lives in the quorum, not in one member).
        self.leader_of(replicas)
        self.assertEqual(first.status, 200,
                         f"the first change after losing one etcd member of three: {first!r}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
