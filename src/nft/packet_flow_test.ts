import {
  cidr,
  endpointSet,
  ep,
  port,
  service,
  snapshotOf,
} from "../../tests/support/nft_fixtures.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type RenderOptions, renderRuleset } from "./render.ts";
import { type Packet, simulateText } from "../../tests/support/nft_simulate.ts";
import { categorizeEndpoints } from "../model/topology.ts";
import type { EndpointSet, Service } from "../model/types.ts";
import { ip } from "../../tests/support/model_values.ts";

const OPTIONS: RenderOptions = {
  clusterCidrs: [cidr("198.18.0.0/24"), cidr("2001:db8::/64")],
  nodeName: "node-a",
  nodePortAddresses: [],
  serviceCidrs: [cidr("198.19.0.0/24")],
  dnsNotrack: [{ address: "198.18.0.1", port: 53 }],
};
/** The node: bridge address (inside the pod CIDR) and the address facing the client host. */
const HOST = { localAddresses: ["198.18.0.1", "198.18.100.1", "2001:db8::1", "2001:db8:100::1"] };
const POD = "198.18.0.20", CLIENT = "198.18.100.2", FAR = "198.18.200.2";

const services: Service[] = [];
const sets: EndpointSet[] = [];
function add(s: Service, eps: Parameters<typeof endpointSet>[1], targetPorts?: number[]) {
  services.push(s);
  if (eps.length > 0) sets.push(endpointSet(s, eps, targetPorts));
}
const A = ep("198.18.0.10"), B = ep("198.18.0.11", { nodeName: "node-b" }), C = ep("198.18.0.12");
add(service("web", ["198.19.0.10"], [port(80, 8080), port(443, 8443, "TCP", "https")]), [A, B, C]);
add(service("dns", ["198.19.0.53"], [port(53, 5353, "UDP", "dns"), port(53, 5353, "TCP", "tcp")]), [
  A,
  B,
]);
add(service("empty", ["198.19.0.20"], [port(80, 8080), port(53, 53, "UDP", "dns")]), []);
add(service("itp", ["198.19.0.21"], [port(80, 8080)], { internalTrafficPolicy: "Local" }), [B]);
add(service("np", ["198.19.0.30"], [port(80, 8080, "TCP", "", 30080)], { type: "NodePort" }), [
  A,
  B,
]);
add(
  service("nplocal", ["198.19.0.31"], [port(80, 8080, "TCP", "", 30081)], {
    type: "NodePort",
    externalTrafficPolicy: "Local",
  }),
  [A, B],
);
add(
  service("ext", ["198.19.0.40"], [port(80, 8080)], {
    externalIPs: [ip("198.19.1.1")],
    externalTrafficPolicy: "Local",
  }),
  [A, B],
);
add(
  service("lb", ["198.19.0.50"], [port(443, 8443)], {
    type: "LoadBalancer",
    loadBalancerIPs: [ip("198.19.2.1")],
    loadBalancerSourceRanges: [cidr("198.18.100.0/24")],
  }),
  [C],
);
add(
  service("aff", ["198.19.0.60"], [port(80, 8080)], {
    sessionAffinity: "ClientIP",
    sessionAffinityTimeoutSeconds: 60,
  }),
  [A, B, C],
);
add(
  service("v6", ["2001:db8:ffff::10"], [port(80, 8080)]),
  [ep("2001:db8::a"), ep("2001:db8::b")],
);
add(
  service("drain", ["198.19.0.70"], [port(80, 8080)]),
  [ep("198.18.0.13", { ready: false, serving: true, terminating: true })],
);

const ruleset = renderRuleset(snapshotOf(services, sets), OPTIONS);
const [V4, V6] = ruleset.tables;

type Row = [string, string, Packet["proto"], number, string[]];
const EPS = (
  port: number,
  masqOn: string | null = null,
  all = ["198.18.0.10", "198.18.0.11", "198.18.0.12"],
) => all.map((a) => `${a}:${port}${masqOn === "all" || masqOn === a ? " masq" : ""}`);

// {source, destination, protocol, port} -> every possible outcome.
const TABLE: Row[] = [
  // ClusterIP from a pod: any endpoint; the pod's own endpoint only through hairpin masquerade.
  [POD, "198.19.0.10", "tcp", 80, EPS(8080)],
  ["198.18.0.10", "198.19.0.10", "tcp", 80, EPS(8080, "198.18.0.10")],
  [POD, "198.19.0.10", "tcp", 443, EPS(8443)],
  // From the node itself (inside the cluster CIDR here) and from outside it (masqueraded).
  ["198.18.0.1", "198.19.0.10", "tcp", 80, EPS(8080)],
  [CLIENT, "198.19.0.10", "tcp", 80, EPS(8080, "all")],
  // Unknown port on a live VIP, wrong protocol, and an unallocated service IP.
  [POD, "198.19.0.10", "tcp", 81, ["REJECT"]],
  [POD, "198.19.0.10", "udp", 80, ["REJECT"]],
  [POD, "198.19.0.99", "tcp", 80, ["DROP"]],
  // UDP and TCP on one port.
  [POD, "198.19.0.53", "udp", 53, ["198.18.0.10:5353", "198.18.0.11:5353"]],
  [POD, "198.19.0.53", "tcp", 53, ["198.18.0.10:5353", "198.18.0.11:5353"]],
  // No endpoints: refused at once, TCP and UDP.
  [POD, "198.19.0.20", "tcp", 80, ["REJECT"]],
  [POD, "198.19.0.20", "udp", 53, ["REJECT"]],
  ["198.18.0.1", "198.19.0.20", "tcp", 80, ["REJECT"]],
  // internalTrafficPolicy Local with the only endpoint on another node: dropped.
  [POD, "198.19.0.21", "tcp", 80, ["DROP"]],
  // NodePort, policy Cluster: any endpoint, masqueraded; on any node address, not loopback.
  [CLIENT, "198.18.100.1", "tcp", 30080, ["198.18.0.10:8080 masq", "198.18.0.11:8080 masq"]],
  [POD, "198.18.0.1", "tcp", 30080, ["198.18.0.10:8080 masq", "198.18.0.11:8080 masq"]],
  ["198.18.0.1", "127.0.0.1", "tcp", 30080, ["ACCEPT"]],
  [CLIENT, "198.18.100.1", "tcp", 30099, ["ACCEPT"]],
  // NodePort, policy Local: outsiders reach local endpoints with their source kept.
  [CLIENT, "198.18.100.1", "tcp", 30081, ["198.18.0.10:8080"]],
  // externalIP, policy Local: outsiders -> local endpoint, unmasqueraded; pods -> any endpoint;
  // the host (from an address outside the cluster CIDR) -> any endpoint, masqueraded.
  [CLIENT, "198.19.1.1", "tcp", 80, ["198.18.0.10:8080"]],
  [POD, "198.19.1.1", "tcp", 80, ["198.18.0.10:8080", "198.18.0.11:8080"]],
  ["198.18.100.1", "198.19.1.1", "tcp", 80, ["198.18.0.10:8080 masq", "198.18.0.11:8080 masq"]],
  // LoadBalancer IP with source ranges: allowed range in, others dropped before any NAT.
  [CLIENT, "198.19.2.1", "tcp", 443, ["198.18.0.12:8443 masq"]],
  [FAR, "198.19.2.1", "tcp", 443, ["DROP"]],
  // The ClusterIP of that service is not behind the firewall.
  [FAR, "198.19.0.50", "tcp", 443, ["198.18.0.12:8443 masq"]],
  // Terminating-but-serving endpoint used when none is ready.
  [POD, "198.19.0.70", "tcp", 80, ["198.18.0.13:8080"]],
  // Not a service: untouched. The DNS bind is notracked, hence never NATed.
  [POD, "198.18.0.11", "tcp", 8080, ["ACCEPT"]],
  [POD, "198.18.0.1", "udp", 53, ["ACCEPT"]],
];

for (const [src, dst, proto, dport, expected] of TABLE) {
  Deno.test(`simulate: ${src} -> ${dst} ${proto}/${dport}`, () => {
    assertEquals(
      simulateText(V4, { src, dst, proto, dport }, HOST),
      [...expected].sort(),
      "outcomes",
    );
  });
}

Deno.test("simulate: the node reaching its own LB IP, with source ranges (kube-proxy TestLoadBalancer)", () => {
  // The LB IP is a local address of the node (VIP-like LBs route it there): a connection from the
  // node to it leaves from the LB IP itself. kube-proxy allows the LB IPs as sources exactly when
  // a range holds one of the node's addresses.
  const host = { localAddresses: [...HOST.localAddresses, "198.19.2.9"] };
  const options: RenderOptions = { ...OPTIONS, nodeIps: [ip("198.18.100.1"), ip("198.18.0.1")] };
  const lbOf = (ranges: string[]) => {
    const s = service("lb-self", ["198.19.0.51"], [port(443, 8443)], {
      type: "LoadBalancer",
      loadBalancerIPs: [ip("198.19.2.9")],
      loadBalancerSourceRanges: ranges.map(cidr),
    });
    return renderRuleset(snapshotOf([s], [endpointSet(s, [C])]), options).tables[0];
  };
  const fromLb = { src: "198.19.2.9", dst: "198.19.2.9", proto: "tcp" as const, dport: 443 };
  // [ranges, outcome of the node -> own LB IP, outcome of the client host -> LB IP]
  const table: [string[], string[], string[]][] = [
    [["198.18.100.0/24"], ["198.18.0.12:8443 masq"], ["198.18.0.12:8443 masq"]],
    [["198.18.200.0/24"], ["DROP"], ["DROP"]],
    [[], ["198.18.0.12:8443 masq"], ["198.18.0.12:8443 masq"]],
  ];
  for (const [ranges, self, client] of table) {
    const t = lbOf(ranges);
    assertEquals(simulateText(t, fromLb, host), self, `node -> own LB IP, ranges ${ranges}`);
    assertEquals(
      simulateText(t, { ...fromLb, src: CLIENT }, host),
      client,
      `client -> LB IP, ranges ${ranges}`,
    );
  }
});

Deno.test("simulate: IPv6 service from a pod and from the client host", () => {
  assertEquals(
    simulateText(
      V6,
      { src: "2001:db8::20", dst: "2001:db8:ffff::10", proto: "tcp", dport: 80 },
      HOST,
    ),
    ["[2001:db8::a]:8080", "[2001:db8::b]:8080"],
    "pod",
  );
  assertEquals(
    simulateText(
      V6,
      { src: "2001:db8:100::2", dst: "2001:db8:ffff::10", proto: "tcp", dport: 80 },
      HOST,
    ),
    ["[2001:db8::a]:8080 masq", "[2001:db8::b]:8080 masq"],
    "client host",
  );
  assertEquals(
    simulateText(
      V6,
      { src: "2001:db8::20", dst: "2001:db8:ffff::10", proto: "tcp", dport: 81 },
      HOST,
    ),
    ["REJECT"],
    "unknown port",
  );
});

Deno.test("simulate: ClientIP affinity sticks to the first pick for that client only", () => {
  const affinity = new Map<string, string>();
  const pkt = (src: string): Packet => ({ src, dst: "198.19.0.60", proto: "tcp", dport: 80 });
  const first = simulateText(V4, pkt(POD), HOST, { affinity, pick: () => 1 });
  assertEquals(first, ["198.18.0.11:8080"], "first connection picks slot 1");
  for (const pick of [0, 2, 1, 0]) {
    assertEquals(simulateText(V4, pkt(POD), HOST, { affinity, pick: () => pick }), first, "sticks");
  }
  assertEquals(
    simulateText(V4, pkt("198.18.0.21"), HOST, { affinity, pick: () => 2 }),
    ["198.18.0.12:8080"],
    "another client picks on its own",
  );
  // Forking without a pick shows every endpoint is possible for a new client.
  assertEquals(simulateText(V4, pkt("198.18.0.22"), HOST, { affinity }).length, 3, "new client");
});

Deno.test("simulate: over 300 random services, a pod reaches exactly the usable endpoints of each port", () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const many: Service[] = [], manySets: EndpointSet[] = [];
  for (let i = 0; i < 300; i++) {
    const s = service(`m${i}`, [`198.19.${10 + (i >> 8)}.${i & 255}`], [
      port(80, 8080),
      ...(rand() < 0.5 ? [port(53, 5353, "UDP", "dns")] : []),
    ]);
    many.push(s);
    const n = Math.floor(rand() * 6);
    manySets.push(endpointSet(
      s,
      Array.from({ length: n }, (_, j) =>
        ep(`198.18.${1 + (j % 3)}.${(i * 7 + j) & 255}`, {
          ready: rand() < 0.7,
          serving: true,
          terminating: rand() < 0.5,
        })),
    ));
  }
  const snap = snapshotOf(many, manySets);
  const table =
    renderRuleset(snap, { clusterCidrs: [], nodeName: "node-a", nodePortAddresses: [] }).tables[0];
  let checked = 0;
  for (const entry of snap.services.values()) {
    for (const rp of entry.ports) {
      const usable = categorizeEndpoints(rp.backends, entry.service, { nodeName: "node-a" })
        .cluster.map((b) => `${b.address}:${b.port}`).sort();
      const got = simulateText(table, {
        src: "198.18.9.9",
        dst: entry.service.clusterIPs[0],
        proto: rp.servicePort.protocol.toLowerCase() as Packet["proto"],
        dport: rp.servicePort.port,
      }, { localAddresses: ["198.18.9.1"] });
      assertEquals(
        got,
        usable.length > 0 ? usable : ["REJECT"],
        `${entry.key} ${rp.servicePort.port}`,
      );
      checked++;
    }
  }
  assert(checked > 300, `checked ${checked} service ports`);
});

Deno.test("simulate: --masquerade-all and each --detect-local-mode decide who is masqueraded", () => {
  const web = services[0];
  const webSet = sets[0];
  const ext = services.find((s) => s.name === "ext")!;
  const extSet = sets.find((s) => s.serviceName === "ext")!;
  const nodeFacts = {
    name: "node-a",
    podCidrs: [cidr("198.18.0.0/25")],
    addresses: [],
    deleting: false,
    toBeDeleted: false,
  };
  const snap = snapshotOf([web, ext], [webSet, extSet]);
  const withNode = { ...snap, node: nodeFacts };
  const base: RenderOptions = { ...OPTIONS, clusterCidrs: [cidr("198.18.0.0/24")] };
  const v4 = (options: RenderOptions, node = false) =>
    renderRuleset(node ? withNode : snap, options).tables[0];
  const masqOf = (outcomes: string[]) =>
    outcomes.every((o) => o.endsWith(" masq"))
      ? "masq"
      : outcomes.some((o) => o.endsWith(" masq"))
      ? "mixed"
      : "kept";
  const toVip = (src: string, iif?: string) => ({
    src,
    dst: "198.19.0.10",
    proto: "tcp" as const,
    dport: 80,
    ...(iif ? { iif } : {}),
  });
  // [what, options, from the node's facts, packet, source kept or masqueraded]
  const table: [string, RenderOptions, boolean, Packet, string][] = [
    ["ClusterCIDR: a pod keeps its source", base, false, toVip(POD, "veth0"), "kept"],
    ["ClusterCIDR: outside the CIDR, masqueraded", base, false, toVip(CLIENT, "eth1"), "masq"],
    [
      "--masquerade-all: a pod too",
      { ...base, masqueradeAll: true },
      false,
      toVip(POD, "veth0"),
      "masq",
    ],
    [
      "NodeCIDR: this node's pod CIDR (from its Node) kept",
      { ...base, localDetect: { mode: "NodeCIDR" } },
      true,
      toVip("198.18.0.20", "veth0"),
      "kept",
    ],
    [
      "NodeCIDR: another node's pods (in --cluster-cidr, not in this node's) masqueraded",
      { ...base, localDetect: { mode: "NodeCIDR" } },
      true,
      toVip("198.18.0.200", "eth1"),
      "masq",
    ],
    [
      "BridgeInterface: in from the pod bridge, kept",
      { ...base, clusterCidrs: [], localDetect: { mode: "BridgeInterface", bridge: "br0" } },
      false,
      toVip(CLIENT, "br0"),
      "kept",
    ],
    [
      "BridgeInterface: in from elsewhere, masqueraded",
      { ...base, clusterCidrs: [], localDetect: { mode: "BridgeInterface", bridge: "br0" } },
      false,
      toVip(POD, "eth1"),
      "masq",
    ],
    [
      "InterfaceNamePrefix: in from veth*, kept",
      { ...base, clusterCidrs: [], localDetect: { mode: "InterfaceNamePrefix", prefix: "veth" } },
      false,
      toVip(CLIENT, "veth7"),
      "kept",
    ],
    [
      "InterfaceNamePrefix: in from eth1, masqueraded",
      { ...base, clusterCidrs: [], localDetect: { mode: "InterfaceNamePrefix", prefix: "veth" } },
      false,
      toVip(POD, "eth1"),
      "masq",
    ],
  ];
  for (const [what, options, node, packet, expected] of table) {
    assertEquals(masqOf(simulateText(v4(options, node), packet, HOST)), expected, what);
  }
  // External traffic policy Local: pods (per the detector) reach every endpoint, others local ones.
  const bridge: RenderOptions = {
    ...base,
    clusterCidrs: [],
    localDetect: { mode: "BridgeInterface", bridge: "br0" },
  };
  const toExt = (iif: string): Packet => ({
    src: CLIENT,
    dst: "198.19.1.1",
    proto: "tcp",
    dport: 80,
    iif,
  });
  assertEquals(simulateText(v4(bridge), toExt("br0"), HOST), [
    "198.18.0.10:8080",
    "198.18.0.11:8080",
  ]);
  assertEquals(simulateText(v4(bridge), toExt("eth1"), HOST), ["198.18.0.10:8080"]);
});
