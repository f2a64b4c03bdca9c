import {
  deepStrictEqual as assertEquals,
  notDeepStrictEqual as assertNotEquals,
  ok as assert,
  strictEqual as assertStrictEquals,
} from "node:assert/strict";
import { cidrContains } from "../model/ip.ts";
import type { IpFamily, Service } from "../model/types.ts";
import { allocateVips, type AllocationResult, DEFAULT_QUARANTINE_MS } from "./allocator.ts";
import { EMPTY_IPAM_STATE, type IpamState, parseIpamState, renderIpamState } from "./state.ts";
import { testService } from "../../tests/support/test_service.ts";
import { cidr, ip } from "../../tests/support/model_values.ts";

const svc = testService;

const V4 = cidr("198.19.0.0/16");
const V6 = cidr("2001:db8:1::/112");
const T0 = 1_700_000_000_000;

function ipsOf(r: AllocationResult): Record<string, readonly string[]> {
  return Object.fromEntries(r.services.map((s) => [`${s.namespace}/${s.name}`, s.clusterIPs]));
}

function messages(r: AllocationResult): string[] {
  return r.errors.map((e) => e.message);
}

Deno.test("allocateVips: dynamic IPv4 VIPs are inside the CIDR, above the static band, distinct", () => {
  const services = ["default/web", "default/api", "default/db", "prod/web"].map((k) => svc(k));
  const r = allocateVips(EMPTY_IPAM_STATE, services, { cidrs: [V4], now: T0 });
  assertEquals(r.errors, []);
  const ips = r.services.map((s) => s.clusterIPs[0]);
  assertEquals(new Set(ips).size, 4);
  for (const s of r.services) {
    assertEquals(s.clusterIPs.length, 1);
    assertEquals(s.ipFamilies, [4]);
    assert(cidrContains(V4, s.clusterIPs[0]));
    // /16: the lower band of 256 addresses (198.19.0.1 - 198.19.1.0) is kept for explicit IPs.
    const [, , c, d] = s.clusterIPs[0].split(".").map(Number);
    assert(c * 256 + d > 256, `${s.clusterIPs[0]} is in the static band`);
  }
  assertEquals(Object.keys(r.state.allocations).sort(), [
    "default/api",
    "default/db",
    "default/web",
    "prod/web",
  ]);
  assertEquals(r.stateChanged, true);
});

Deno.test("allocateVips: golden VIPs (the hash choice is part of the on-disk contract)", () => {
  const r = allocateVips(
    EMPTY_IPAM_STATE,
    [svc("default/web", { ipFamilies: [4, 6] }), svc("default/api")],
    { cidrs: [V4, V6], now: T0 },
  );
  // Changing the hash would move every VIP of a node that upgrades with an empty state dir.
  // Values checked against an independent implementation (Python FNV-1a 64 over "key|family",
  // offset into the range above the static band).
  assertEquals(ipsOf(r), {
    "default/web": ["198.19.95.0", "2001:db8:1::5abe"],
    "default/api": ["198.19.245.2"],
  });
});

Deno.test("allocateVips: the result does not depend on the order of services", () => {
  const keys = ["a/one", "b/two", "c/three", "d/four", "e/five", "f/six"];
  const forward = allocateVips(EMPTY_IPAM_STATE, keys.map((k) => svc(k)), {
    cidrs: [cidr("198.19.0.0/29")],
    now: T0,
  });
  const backward = allocateVips(EMPTY_IPAM_STATE, [...keys].reverse().map((k) => svc(k)), {
    cidrs: [cidr("198.19.0.0/29")],
    now: T0,
  });
  assertEquals(ipsOf(forward), ipsOf(backward));
  assertEquals(renderIpamState(forward.state), renderIpamState(backward.state));
});

Deno.test("allocateVips: a restart with the persisted state gives every service the same VIP", () => {
  const cidrs = [V4, V6];
  const first = allocateVips(
    EMPTY_IPAM_STATE,
    [
      svc("default/web", { ipFamilies: [4, 6] }),
      svc("default/api"),
      svc("default/v6", {
        ipFamilies: [6],
      }),
    ],
    { cidrs, now: T0 },
  );
  const text = renderIpamState(first.state);
  const restored = parseIpamState(text);
  if (typeof restored === "string") throw new Error(restored);
  // New services arrive and the order changes: the old ones keep their VIPs.
  const second = allocateVips(
    restored,
    [
      svc("default/new1"),
      svc("default/v6", { ipFamilies: [6] }),
      svc("default/api"),
      svc(
        "default/web",
        { ipFamilies: [4, 6] },
      ),
      svc("default/new2"),
    ],
    { cidrs, now: T0 + 60_000 },
  );
  const a = ipsOf(first), b = ipsOf(second);
  for (const key of Object.keys(a)) assertEquals(b[key], a[key], key);
  // Nothing was released.
  assertEquals(second.state.released, []);
  // Same input again: nothing to save.
  const third = allocateVips(second.state, second.services, { cidrs, now: T0 + 120_000 });
  assertEquals(third.stateChanged, false);
});

Deno.test("allocateVips: headless and ExternalName services get no VIP and pass through", () => {
  const headless = svc("default/db", { headless: true });
  const ext = svc("default/ext", { type: "ExternalName", externalName: "example.org" });
  const r = allocateVips(EMPTY_IPAM_STATE, [headless, ext], { cidrs: [V4], now: T0 });
  assertEquals(r.errors, []);
  assertStrictEquals(r.services[0], headless);
  assertStrictEquals(r.services[1], ext);
  assertEquals(r.state.allocations, {});
});

Deno.test("allocateVips: explicit clusterIPs are honoured, canonicalised, and may use the static band", () => {
  const r = allocateVips(
    EMPTY_IPAM_STATE,
    [svc("default/web", { clusterIPs: [ip("198.19.0.10"), ip("2001:db8:1:0::a")] })],
    { cidrs: [V4, V6], now: T0 },
  );
  assertEquals(r.errors, []);
  assertEquals(ipsOf(r), { "default/web": ["198.19.0.10", "2001:db8:1::a"] });
  assertEquals(r.services[0].ipFamilies, [4, 6]);
});

Deno.test("allocateVips: bad explicit clusterIPs are an error for that service alone", () => {
  const held: IpamState = {
    version: 1,
    allocations: { "default/api": { ips: [ip("198.19.0.7")] } },
    released: [],
  };
  const cases: [string, Service, string][] = [
    [
      "taken by a service holding it",
      svc("default/web", { clusterIPs: [ip("198.19.0.7")] }),
      `default/web: clusterIP "198.19.0.7" is already allocated to default/api`,
    ],
    [
      "outside the CIDR",
      svc("default/web", { clusterIPs: [ip("198.20.0.7")] }),
      `default/web: clusterIP "198.20.0.7" is outside --service-cidr 198.19.0.0/16`,
    ],
    [
      "network address",
      svc("default/web", { clusterIPs: [ip("198.19.0.0")] }),
      `default/web: clusterIP "198.19.0.0" is the network address of 198.19.0.0/16`,
    ],
    [
      "broadcast address",
      svc("default/web", { clusterIPs: [ip("198.19.255.255")] }),
      `default/web: clusterIP "198.19.255.255" is the broadcast address of 198.19.0.0/16`,
    ],
    [
      "IPv6 without an IPv6 CIDR",
      svc("default/web", { clusterIPs: [ip("2001:db8:1::5")] }),
      `default/web: clusterIP "2001:db8:1::5" is IPv6 but no IPv6 --service-cidr is configured`,
    ],
    [
      "two of one family",
      svc("default/web", { clusterIPs: [ip("198.19.0.8"), ip("198.19.0.9")] }),
      `default/web: clusterIPs "198.19.0.8" and "198.19.0.9" are both IPv4 (at most one per family)`,
    ],
  ];
  for (const [name, service, expected] of cases) {
    const r = allocateVips(held, [svc("default/api"), service, svc("default/other")], {
      cidrs: [V4],
      now: T0,
    });
    assertEquals(messages(r), [expected], name);
    // The others are served: api keeps its VIP, other gets one.
    assertEquals(ipsOf(r)["default/api"], ["198.19.0.7"], name);
    assertEquals(ipsOf(r)["default/other"]?.length, 1, name);
    assertEquals(r.services.some((s) => s.name === "web"), false, name);
    assertEquals(r.state.allocations["default/web"], undefined, name);
  }
});

Deno.test("allocateVips: IPv6 subnet-router anycast address is reserved, the last one is not", () => {
  const r = allocateVips(
    EMPTY_IPAM_STATE,
    [
      svc("default/a", { clusterIPs: [ip("2001:db8:1::")] }),
      svc("default/b", { clusterIPs: [ip("2001:db8:1::ffff")] }),
    ],
    { cidrs: [V6], now: T0 },
  );
  assertEquals(messages(r), [
    `default/a: clusterIP "2001:db8:1::" is the subnet-router anycast address of 2001:db8:1::/112`,
  ]);
  assertEquals(ipsOf(r), { "default/b": ["2001:db8:1::ffff"] });
});

Deno.test("allocateVips: two new services asking for one IP: the first key wins, whatever the order", () => {
  for (const order of [["a", "b"], ["b", "a"]]) {
    const r = allocateVips(
      EMPTY_IPAM_STATE,
      order.map((n) => svc(`default/${n}`, { clusterIPs: [ip("198.19.0.7")] })),
      { cidrs: [V4], now: T0 },
    );
    assertEquals(ipsOf(r), { "default/a": ["198.19.0.7"] });
    assertEquals(messages(r), [
      `default/b: clusterIP "198.19.0.7" is already allocated to default/a`,
    ]);
  }
});

Deno.test("allocateVips: a failed service keeps its previous VIP reserved (last good state)", () => {
  const before: IpamState = {
    version: 1,
    allocations: {
      "default/api": { ips: [ip("198.19.0.7")] },
      "default/web": { ips: [ip("198.19.40.1")] },
    },
    released: [],
  };
  const r = allocateVips(
    before,
    [svc("default/api"), svc("default/web", { clusterIPs: [ip("198.19.0.7")] })],
    { cidrs: [V4], now: T0 },
  );
  assertEquals(messages(r), [
    `default/web: clusterIP "198.19.0.7" is already allocated to default/api`,
  ]);
  assertEquals(r.state.allocations["default/web"], { ips: ["198.19.40.1"] });
  assertEquals(r.state.released, []);
});

Deno.test("allocateVips: dual-stack gets one VIP per family, in ipFamilies order", () => {
  const r = allocateVips(
    EMPTY_IPAM_STATE,
    [svc("default/web", { ipFamilies: [6, 4] }), svc("default/six", { ipFamilies: [6] })],
    { cidrs: [V4, V6], now: T0 },
  );
  assertEquals(r.errors, []);
  const web = r.services[0];
  assertEquals(web.ipFamilies, [6, 4]);
  assert(cidrContains(V6, web.clusterIPs[0]) && cidrContains(V4, web.clusterIPs[1]));
  assertEquals(r.services[1].ipFamilies, [6]);
  assert(cidrContains(V6, r.services[1].clusterIPs[0]));
});

Deno.test("allocateVips: no ipFamilies means the family of the first CIDR", () => {
  const r = allocateVips(EMPTY_IPAM_STATE, [svc("default/web")], { cidrs: [V6, V4], now: T0 });
  assertEquals(r.services[0].ipFamilies, [6]);
});

Deno.test("allocateVips: a family without a CIDR fails that service, and nothing is half-allocated", () => {
  const r = allocateVips(
    EMPTY_IPAM_STATE,
    [svc("default/web", { ipFamilies: [4, 6] }), svc("default/api")],
    { cidrs: [V4], now: T0 },
  );
  assertEquals(messages(r), [
    "default/web: IPv6 is requested (ipFamilies) but no IPv6 --service-cidr is configured",
  ]);
  assertEquals(Object.keys(r.state.allocations), ["default/api"]);
});

Deno.test("allocateVips: exhaustion of a /29 (6 usable) fails only the services that do not fit", () => {
  const small = cidr("198.19.0.0/29");
  const keys = ["a", "b", "c", "d", "e", "f", "g"].map((n) => `default/${n}`);
  const r = allocateVips(EMPTY_IPAM_STATE, keys.map((k) => svc(k)), { cidrs: [small], now: T0 });
  assertEquals(messages(r), [
    "default/g: no free IPv4 address left in --service-cidr 198.19.0.0/29 (6 usable: 6 allocated, 0 quarantined)",
  ]);
  const ips = r.services.map((s) => s.clusterIPs[0]).sort();
  assertEquals(ips, [
    "198.19.0.1",
    "198.19.0.2",
    "198.19.0.3",
    "198.19.0.4",
    "198.19.0.5",
    "198.19.0.6",
  ]);
});

Deno.test("allocateVips: a released VIP is quarantined from other services, not from its owner", () => {
  const small = cidr("198.19.0.0/29");
  const six = ["a", "b", "c", "d", "e", "f"].map((n) => svc(`default/${n}`));
  const full = allocateVips(EMPTY_IPAM_STATE, six, { cidrs: [small], now: T0 });
  const aIp = full.state.allocations["default/a"].ips[0];

  // a is deleted: its VIP is released, not reused for g within the quarantine.
  const t1 = T0 + 60_000;
  const withoutA = allocateVips(full.state, [...six.slice(1), svc("default/g")], {
    cidrs: [small],
    now: t1,
  });
  assertEquals(withoutA.state.released, [{ ip: aIp, key: "default/a", at: t1 }]);
  assertEquals(messages(withoutA), [
    "default/g: no free IPv4 address left in --service-cidr 198.19.0.0/29 (6 usable: 5 allocated, 1 quarantined)",
  ]);

  // a comes back within the quarantine: it gets its old VIP.
  const back = allocateVips(withoutA.state, six, { cidrs: [small], now: t1 + 1000 });
  assertEquals(back.errors, []);
  assertEquals(back.state.allocations["default/a"].ips, [aIp]);
  assertEquals(back.state.released, []);

  // After the quarantine, g may have it.
  const later = t1 + DEFAULT_QUARANTINE_MS;
  const g = allocateVips(withoutA.state, [...six.slice(1), svc("default/g")], {
    cidrs: [small],
    now: later,
  });
  assertEquals(g.errors, []);
  assertEquals(g.state.allocations["default/g"].ips, [aIp]);
  assertEquals(g.state.released, []);
});

Deno.test("allocateVips: quarantine is honoured with a custom period and survives a state round trip", () => {
  const small = cidr("198.19.0.0/30"); // 2 usable
  const s1 = allocateVips(EMPTY_IPAM_STATE, [svc("default/a"), svc("default/b")], {
    cidrs: [small],
    now: T0,
  });
  const s2 = allocateVips(s1.state, [svc("default/b")], { cidrs: [small], now: T0 });
  const restored = parseIpamState(renderIpamState(s2.state)) as IpamState;
  const opts = { cidrs: [small], quarantineMs: 5000 };
  const early = allocateVips(restored, [svc("default/b"), svc("default/c")], {
    ...opts,
    now: T0 + 4999,
  });
  assertEquals(early.errors.length, 1);
  const late = allocateVips(restored, [svc("default/b"), svc("default/c")], {
    ...opts,
    now: T0 + 5000,
  });
  assertEquals(late.errors, []);
  assertEquals(late.state.allocations["default/c"].ips, s1.state.allocations["default/a"].ips);
});

Deno.test("allocateVips: an explicit clusterIP may take a quarantined VIP", () => {
  const before: IpamState = {
    version: 1,
    allocations: {},
    released: [{ ip: ip("198.19.0.9"), key: "default/old", at: T0 }],
  };
  const r = allocateVips(before, [svc("default/new", { clusterIPs: [ip("198.19.0.9")] })], {
    cidrs: [V4],
    now: T0 + 1,
  });
  assertEquals(r.errors, []);
  assertEquals(r.state.released, []);
});

Deno.test("allocateVips: dropping a family releases that family's VIP", () => {
  const s1 = allocateVips(EMPTY_IPAM_STATE, [svc("default/web", { ipFamilies: [4, 6] })], {
    cidrs: [V4, V6],
    now: T0,
  });
  const [v4, v6] = s1.state.allocations["default/web"].ips;
  const s2 = allocateVips(s1.state, [svc("default/web", { ipFamilies: [4] })], {
    cidrs: [V4, V6],
    now: T0 + 1,
  });
  assertEquals(s2.state.allocations["default/web"].ips, [v4]);
  assertEquals(s2.state.released, [{ ip: v6, key: "default/web", at: T0 + 1 }]);
});

Deno.test("allocateVips: a VIP outside a changed --service-cidr moves into the new one", () => {
  const s1 = allocateVips(EMPTY_IPAM_STATE, [svc("default/web")], { cidrs: [V4], now: T0 });
  const moved = cidr("198.19.128.0/17");
  const old = s1.state.allocations["default/web"].ips[0];
  const s2 = allocateVips(s1.state, [svc("default/web")], { cidrs: [moved], now: T0 + 1 });
  const now = s2.state.allocations["default/web"].ips[0];
  assert(cidrContains(moved, now));
  if (!cidrContains(moved, old)) assertNotEquals(now, old);
  else assertEquals(now, old);
});

Deno.test("allocateVips: lock-file pins win over this node's own allocations", () => {
  // Node-local state gave web's pinned VIP to api; the lock moves api, web gets the pinned one.
  const local: IpamState = {
    version: 1,
    allocations: { "default/api": { ips: [ip("198.19.50.5")] } },
    released: [],
  };
  const r = allocateVips(local, [svc("default/api"), svc("default/web")], {
    cidrs: [V4],
    now: T0,
    pins: { "default/web": [ip("198.19.50.5")] },
  });
  assertEquals(r.errors, []);
  assertEquals(ipsOf(r)["default/web"], ["198.19.50.5"]);
  assertNotEquals(ipsOf(r)["default/api"], ["198.19.50.5"]);
});

Deno.test("allocateVips: lock-file problems name the lock file", () => {
  const held: IpamState = {
    version: 1,
    allocations: { "default/api": { ips: [ip("198.19.0.7")] } },
    released: [],
  };
  const r = allocateVips(
    held,
    [svc("default/api", { clusterIPs: [ip("198.19.0.7")] }), svc("default/web"), svc("default/x")],
    {
      cidrs: [V4],
      now: T0,
      pins: { "default/web": [ip("198.19.0.7")], "default/x": [ip("198.20.0.1")] },
    },
  );
  assertEquals(messages(r), [
    `default/web: clusterIP "198.19.0.7" (from the VIP lock file) is already allocated to default/api`,
    `default/x: clusterIP "198.20.0.1" (from the VIP lock file) is outside --service-cidr 198.19.0.0/16`,
  ]);
});

Deno.test("allocateVips: a lock entry missing a requested family warns and allocates it here", () => {
  const r = allocateVips(EMPTY_IPAM_STATE, [svc("default/web", { ipFamilies: [4, 6] })], {
    cidrs: [V4, V6],
    now: T0,
    pins: { "default/web": [ip("198.19.0.20")] },
  });
  assertEquals(r.errors, []);
  assertEquals(r.warnings.map((w) => w.message), [
    `default/web: the VIP lock file has no IPv6 address for it; allocating one here (rerun "svcgate ipam pin" so every node agrees)`,
  ]);
  assertEquals(r.services[0].clusterIPs[0], "198.19.0.20");
  assert(cidrContains(V6, r.services[0].clusterIPs[1]));
});

Deno.test("allocateVips: a duplicate definition is ignored with a warning", () => {
  const r = allocateVips(EMPTY_IPAM_STATE, [svc("default/web"), svc("default/web")], {
    cidrs: [V4],
    now: T0,
  });
  assertEquals(r.services.length, 1);
  assertEquals(r.warnings.map((w) => w.message), [
    "default/web: defined twice; the second definition is ignored",
  ]);
});

Deno.test("allocateVips: duplicate holders in a hand-edited state: the first key keeps the VIP", () => {
  const broken: IpamState = {
    version: 1,
    allocations: {
      "default/a": { ips: [ip("198.19.9.9")] },
      "default/b": { ips: [ip("198.19.9.9")] },
    },
    released: [],
  };
  const r = allocateVips(broken, [svc("default/b"), svc("default/a")], { cidrs: [V4], now: T0 });
  assertEquals(r.errors, []);
  assertEquals(ipsOf(r)["default/a"], ["198.19.9.9"]);
  assertNotEquals(ipsOf(r)["default/b"], ["198.19.9.9"]);
});

Deno.test("allocateVips: large IPv6 ranges allocate without scanning", () => {
  const big = cidr("2001:db8:2::/64");
  const services = Array.from(
    { length: 200 },
    (_, i) => svc(`ns/s${i}`, { ipFamilies: [6] as IpFamily[] }),
  );
  const r = allocateVips(EMPTY_IPAM_STATE, services, { cidrs: [big], now: T0 });
  assertEquals(r.errors, []);
  assertEquals(new Set(r.services.map((s) => s.clusterIPs[0])).size, 200);
});

Deno.test("allocateVips: PreferDualStack settles for the configured family", () => {
  const prefer = {
    ...svc("default/web", { ipFamilies: [4, 6] }),
    ipFamilyPolicy: "PreferDualStack" as const,
  };
  const require = {
    ...svc("default/api", { ipFamilies: [4, 6] }),
    ipFamilyPolicy: "RequireDualStack" as const,
  };
  const r = allocateVips(EMPTY_IPAM_STATE, [prefer, require], { cidrs: [V4], now: T0 });
  assertEquals(messages(r), [
    "default/api: IPv6 is requested (ipFamilies) but no IPv6 --service-cidr is configured",
  ]);
  assertEquals(r.services.map((s) => s.ipFamilies), [[4]]);
});

Deno.test("allocateVips: with keepUnlisted, services missing from an incomplete list keep their VIPs", () => {
  const before: IpamState = {
    version: 1,
    allocations: {
      "default/api": { ips: [ip("198.19.40.7")] },
      "default/web": { ips: [ip("198.19.40.1")] },
    },
    released: [],
  };
  const kept = allocateVips(before, [svc("default/web")], {
    cidrs: [V4],
    now: T0 + 3_600_000,
    keepUnlisted: true,
  });
  assertEquals(kept.state.allocations, before.allocations);
  assertEquals(kept.state.released, []);
  // Without it, the missing service releases its VIP into quarantine.
  const released = allocateVips(before, [svc("default/web")], { cidrs: [V4], now: T0 });
  assertEquals(released.state.allocations, { "default/web": { ips: ["198.19.40.1"] } });
  assertEquals(released.state.released, [{ ip: "198.19.40.7", key: "default/api", at: T0 }]);
});
