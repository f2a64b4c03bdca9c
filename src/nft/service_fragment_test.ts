import {
  cidr,
  endpointSet,
  ep,
  LAB_OPTIONS,
  port,
  service,
  snapshotOf,
} from "../../tests/support/nft_fixtures.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { renderRuleset } from "./render.ts";
import type { RenderOptions } from "./render_options.ts";
import { renderServiceFragment } from "./service_fragment.ts";
import { isDynamicChain } from "./lb_chains.ts";
import { TableBuilder } from "./table_builder.ts";
import { elementText, type Family, naturalCompare, ruleBody, type TableSpec } from "./ruleset.ts";
import type { EndpointSet, Service } from "../model/types.ts";
import { ip } from "../../tests/support/model_values.ts";

/** Options without CIDRs, so the golden lines show only what services contribute. */
const BARE: RenderOptions = { clusterCidrs: [], nodeName: "node-a", nodePortAddresses: [] };

/** Canonical lines of what services contribute: `set: element` and `chain name: rule`. */
function contentLines(table: TableSpec, options: RenderOptions): string[] {
  const base = new TableBuilder(table.family, options).table;
  const out: string[] = [];
  for (const [set, els] of table.elements) {
    const baseEls = base.elements.get(set)!;
    const commented = table.sets.get(set)!.commentValue;
    for (const [k, v] of els) {
      if (baseEls.get(k) !== v) out.push(`${set}: ${elementText(k, v, commented)}`);
    }
  }
  for (const chain of table.chains.values()) {
    if (!isDynamicChain(chain.name)) continue;
    for (const r of chain.rules) out.push(`chain ${chain.name}: ${ruleBody(r, table.family)}`);
  }
  return out.sort(naturalCompare);
}

function tableOf(
  services: Service[],
  sets: EndpointSet[],
  family: Family = "ip",
  options: RenderOptions = BARE,
): TableSpec {
  return renderRuleset(snapshotOf(services, sets), options).tables.find((t) =>
    t.family === family
  )!;
}

const web = service("web", ["198.19.0.10"], [port(80, 8080)]);

interface Case {
  name: string;
  services: Service[];
  sets: EndpointSet[];
  family?: Family;
  options?: RenderOptions;
  expected: string[];
}

const CASES: Case[] = [
  {
    name: "ClusterIP TCP, two ready endpoints: one slot each, a shared lb chain",
    services: [web],
    sets: [endpointSet(web, [ep("198.18.0.11"), ep("198.18.0.10")])],
    expected: [
      "chain lb-vip-tcp-2: meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 2 map @vip-backends-tcp",
      'cluster-ips: 198.19.0.10 comment "default/web"',
      "hairpin: 198.18.0.10 . 198.18.0.10",
      "hairpin: 198.18.0.11 . 198.18.0.11",
      "service-addrs: 198.19.0.10",
      "vip-backends-tcp: 198.19.0.10 . 80 . 0 : 198.18.0.10 . 8080",
      "vip-backends-tcp: 198.19.0.10 . 80 . 1 : 198.18.0.11 . 8080",
      "vip-dispatch: 198.19.0.10 . tcp . 80 : goto lb-vip-tcp-2",
    ],
  },
  (() => {
    const dns = service("dns", ["198.19.0.53"], [
      port(53, "dns", "UDP", "dns"),
      port(53, "dns-tcp", "TCP", "dns-tcp"),
      port(9000, 9000, "SCTP", "sctp"),
    ]);
    return {
      name: "several ports and protocols (UDP, TCP, SCTP), named target ports",
      services: [dns],
      sets: [endpointSet(dns, [ep("198.18.0.20")], [5353, 5354, 9001])],
      expected: [
        "chain lb-vip-sctp-1: meta l4proto sctp dnat ip to ip daddr . th dport . numgen random mod 1 map @vip-backends-sctp",
        "chain lb-vip-tcp-1: meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 1 map @vip-backends-tcp",
        "chain lb-vip-udp-1: meta l4proto udp dnat ip to ip daddr . th dport . numgen random mod 1 map @vip-backends-udp",
        'cluster-ips: 198.19.0.53 comment "default/dns"',
        "hairpin: 198.18.0.20 . 198.18.0.20",
        "service-addrs: 198.19.0.53",
        "vip-backends-sctp: 198.19.0.53 . 9000 . 0 : 198.18.0.20 . 9001",
        "vip-backends-tcp: 198.19.0.53 . 53 . 0 : 198.18.0.20 . 5354",
        "vip-backends-udp: 198.19.0.53 . 53 . 0 : 198.18.0.20 . 5353",
        "vip-dispatch: 198.19.0.53 . sctp . 9000 : goto lb-vip-sctp-1",
        "vip-dispatch: 198.19.0.53 . tcp . 53 : goto lb-vip-tcp-1",
        "vip-dispatch: 198.19.0.53 . udp . 53 : goto lb-vip-udp-1",
      ],
    };
  })(),
  {
    name: "only ready endpoints are used while any is ready",
    services: [web],
    sets: [endpointSet(web, [
      ep("198.18.0.10"),
      ep("198.18.0.11", { ready: false, serving: true, terminating: true }),
      ep("198.18.0.12", { ready: false, serving: false }),
    ])],
    expected: [
      "chain lb-vip-tcp-1: meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 1 map @vip-backends-tcp",
      'cluster-ips: 198.19.0.10 comment "default/web"',
      "hairpin: 198.18.0.10 . 198.18.0.10",
      "service-addrs: 198.19.0.10",
      "vip-backends-tcp: 198.19.0.10 . 80 . 0 : 198.18.0.10 . 8080",
      "vip-dispatch: 198.19.0.10 . tcp . 80 : goto lb-vip-tcp-1",
    ],
  },
  {
    name: "none ready: fall back to serving and terminating ones",
    services: [web],
    sets: [endpointSet(web, [
      ep("198.18.0.11", { ready: false, serving: true, terminating: true }),
      ep("198.18.0.12", { ready: false, serving: false, terminating: true }),
    ])],
    expected: [
      "chain lb-vip-tcp-1: meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 1 map @vip-backends-tcp",
      'cluster-ips: 198.19.0.10 comment "default/web"',
      "hairpin: 198.18.0.11 . 198.18.0.11",
      "service-addrs: 198.19.0.10",
      "vip-backends-tcp: 198.19.0.10 . 80 . 0 : 198.18.0.11 . 8080",
      "vip-dispatch: 198.19.0.10 . tcp . 80 : goto lb-vip-tcp-1",
    ],
  },
  {
    name: "no endpoints: rejected in the filter hooks",
    services: [web],
    sets: [],
    expected: [
      'cluster-ips: 198.19.0.10 comment "default/web"',
      "no-endpoint-services: 198.19.0.10 . tcp . 80 : goto reject-chain",
      "service-addrs: 198.19.0.10",
    ],
  },
  (() => {
    const itp = service("itp", ["198.19.0.20"], [port(80, 8080)], {
      internalTrafficPolicy: "Local",
    });
    return {
      name: "internalTrafficPolicy Local uses only this node's endpoints",
      services: [itp],
      sets: [endpointSet(itp, [ep("198.18.0.10"), ep("198.18.0.11", { nodeName: "node-b" })])],
      expected: [
        "chain lb-vip-tcp-1: meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 1 map @vip-backends-tcp",
        'cluster-ips: 198.19.0.20 comment "default/itp"',
        "hairpin: 198.18.0.10 . 198.18.0.10",
        "hairpin: 198.18.0.11 . 198.18.0.11",
        "service-addrs: 198.19.0.20",
        "vip-backends-tcp: 198.19.0.20 . 80 . 0 : 198.18.0.10 . 8080",
        "vip-dispatch: 198.19.0.20 . tcp . 80 : goto lb-vip-tcp-1",
      ],
    };
  })(),
  (() => {
    const itp = service("itp", ["198.19.0.20"], [port(80, 8080)], {
      internalTrafficPolicy: "Local",
    });
    return {
      name:
        "internalTrafficPolicy Local without a local endpoint drops (endpoints exist elsewhere)",
      services: [itp],
      sets: [endpointSet(itp, [ep("198.18.0.11", { nodeName: "node-b" })])],
      expected: [
        'cluster-ips: 198.19.0.20 comment "default/itp"',
        "hairpin: 198.18.0.11 . 198.18.0.11",
        "no-endpoint-services: 198.19.0.20 . tcp . 80 : drop",
        "service-addrs: 198.19.0.20",
      ],
    };
  })(),
  (() => {
    const np = service("np", ["198.19.0.30"], [port(80, 8080, "TCP", "", 30080)], {
      type: "NodePort",
    });
    return {
      name: "NodePort, externalTrafficPolicy Cluster: masqueraded, any endpoint",
      services: [np],
      sets: [endpointSet(np, [ep("198.18.0.10"), ep("198.18.0.11", { nodeName: "node-b" })])],
      expected: [
        "chain lb-np-tcp-2: meta l4proto tcp dnat ip to th dport . numgen random mod 2 map @nodeport-backends-tcp",
        "chain lb-vip-tcp-2: meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 2 map @vip-backends-tcp",
        'cluster-ips: 198.19.0.30 comment "default/np"',
        "hairpin: 198.18.0.10 . 198.18.0.10",
        "hairpin: 198.18.0.11 . 198.18.0.11",
        "nodeport-backends-tcp: 30080 . 0 : 198.18.0.10 . 8080",
        "nodeport-backends-tcp: 30080 . 1 : 198.18.0.11 . 8080",
        "nodeport-dispatch: tcp . 30080 : goto lb-np-tcp-2",
        "nodeport-masq: tcp . 30080",
        "service-addrs: 198.19.0.30",
        "vip-backends-tcp: 198.19.0.30 . 80 . 0 : 198.18.0.10 . 8080",
        "vip-backends-tcp: 198.19.0.30 . 80 . 1 : 198.18.0.11 . 8080",
        "vip-dispatch: 198.19.0.30 . tcp . 80 : goto lb-vip-tcp-2",
      ],
    };
  })(),
  (() => {
    const ext = service("ext", ["198.19.0.40"], [port(80, 8080)], {
      externalIPs: [ip("198.19.1.1")],
      externalTrafficPolicy: "Local",
    });
    return {
      name:
        "externalIP with externalTrafficPolicy Local: local endpoints for outsiders, all for pods",
      services: [ext],
      sets: [endpointSet(ext, [ep("198.18.0.10"), ep("198.18.0.11", { nodeName: "node-b" })])],
      expected: [
        "chain lb-vip-local-tcp-1: meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 1 map @vip-local-backends-tcp",
        "chain lb-vip-tcp-2: meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 2 map @vip-backends-tcp",
        'cluster-ips: 198.19.0.40 comment "default/ext"',
        "hairpin: 198.18.0.10 . 198.18.0.10",
        "hairpin: 198.18.0.11 . 198.18.0.11",
        "service-addrs: 198.19.0.40",
        "service-addrs: 198.19.1.1",
        "vip-backends-tcp: 198.19.0.40 . 80 . 0 : 198.18.0.10 . 8080",
        "vip-backends-tcp: 198.19.0.40 . 80 . 1 : 198.18.0.11 . 8080",
        "vip-backends-tcp: 198.19.1.1 . 80 . 0 : 198.18.0.10 . 8080",
        "vip-backends-tcp: 198.19.1.1 . 80 . 1 : 198.18.0.11 . 8080",
        "vip-cluster-dispatch: 198.19.1.1 . tcp . 80 : goto lb-vip-tcp-2",
        "vip-dispatch: 198.19.0.40 . tcp . 80 : goto lb-vip-tcp-2",
        "vip-dispatch: 198.19.1.1 . tcp . 80 : goto external-local",
        "vip-local-backends-tcp: 198.19.1.1 . 80 . 0 : 198.18.0.10 . 8080",
        "vip-local-dispatch: 198.19.1.1 . tcp . 80 : goto lb-vip-local-tcp-1",
      ],
    };
  })(),
  (() => {
    const ext = service("ext", ["198.19.0.40"], [port(80, 8080, "TCP", "", 30080)], {
      type: "NodePort",
      externalTrafficPolicy: "Local",
    });
    return {
      name: "NodePort Local with no local endpoint: outsiders dropped, pods and host still served",
      services: [ext],
      sets: [endpointSet(ext, [ep("198.18.0.11", { nodeName: "node-b" })])],
      expected: [
        "chain lb-np-tcp-1: meta l4proto tcp dnat ip to th dport . numgen random mod 1 map @nodeport-backends-tcp",
        "chain lb-vip-tcp-1: meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 1 map @vip-backends-tcp",
        'cluster-ips: 198.19.0.40 comment "default/ext"',
        "hairpin: 198.18.0.11 . 198.18.0.11",
        "no-endpoint-nodeports: tcp . 30080 : drop",
        "nodeport-backends-tcp: 30080 . 0 : 198.18.0.11 . 8080",
        "nodeport-cluster-dispatch: tcp . 30080 : goto lb-np-tcp-1",
        "nodeport-dispatch: tcp . 30080 : goto nodeport-local",
        "service-addrs: 198.19.0.40",
        "vip-backends-tcp: 198.19.0.40 . 80 . 0 : 198.18.0.11 . 8080",
        "vip-dispatch: 198.19.0.40 . tcp . 80 : goto lb-vip-tcp-1",
      ],
    };
  })(),
  (() => {
    const lb = service("lb", ["198.19.0.50"], [port(443, 8443, "TCP", "", 30443)], {
      type: "LoadBalancer",
      loadBalancerIPs: [ip("198.19.2.1"), ip("2001:db8:2::1")],
      loadBalancerSourceRanges: [
        cidr("198.18.100.0/24"),
        cidr("198.18.100.7/32"),
        cidr("198.18.200.0/24"),
      ],
    });
    return {
      name: "LoadBalancer IP with source ranges (nested ranges merged); NodePort too",
      services: [lb],
      sets: [endpointSet(lb, [ep("198.18.0.10")])],
      expected: [
        "chain lb-np-tcp-1: meta l4proto tcp dnat ip to th dport . numgen random mod 1 map @nodeport-backends-tcp",
        "chain lb-vip-tcp-1: meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 1 map @vip-backends-tcp",
        'cluster-ips: 198.19.0.50 comment "default/lb"',
        "external-masq: 198.19.2.1 . tcp . 443",
        "firewall-allow: 198.19.2.1 . tcp . 443 . 198.18.100.0/24",
        "firewall-allow: 198.19.2.1 . tcp . 443 . 198.18.200.0/24",
        "firewall-ips: 198.19.2.1 . tcp . 443",
        "hairpin: 198.18.0.10 . 198.18.0.10",
        "nodeport-backends-tcp: 30443 . 0 : 198.18.0.10 . 8443",
        "nodeport-dispatch: tcp . 30443 : goto lb-np-tcp-1",
        "nodeport-masq: tcp . 30443",
        "service-addrs: 198.19.0.50",
        "service-addrs: 198.19.2.1",
        "vip-backends-tcp: 198.19.0.50 . 443 . 0 : 198.18.0.10 . 8443",
        "vip-backends-tcp: 198.19.2.1 . 443 . 0 : 198.18.0.10 . 8443",
        "vip-dispatch: 198.19.0.50 . tcp . 443 : goto lb-vip-tcp-1",
        "vip-dispatch: 198.19.2.1 . tcp . 443 : goto lb-vip-tcp-1",
      ],
    };
  })(),
  (() => {
    // kube-proxy's TestLoadBalancer: a range holding a node address allows the LB IPs too, except
    // one already inside a range (nft refuses overlapping intervals).
    const lb = service("lb", ["198.19.0.50"], [port(443, 8443)], {
      type: "LoadBalancer",
      loadBalancerIPs: [ip("198.19.2.1"), ip("198.18.100.9")],
      loadBalancerSourceRanges: [cidr("198.18.100.0/24")],
    });
    return {
      name: "LoadBalancer source ranges holding a node address allow the LB IPs themselves",
      services: [lb],
      sets: [endpointSet(lb, [ep("198.18.0.10")])],
      options: { ...BARE, nodeIps: [ip("198.18.100.1"), ip("2001:db8:100::1")] },
      expected: [
        "chain lb-vip-tcp-1: meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 1 map @vip-backends-tcp",
        'cluster-ips: 198.19.0.50 comment "default/lb"',
        "external-masq: 198.18.100.9 . tcp . 443",
        "external-masq: 198.19.2.1 . tcp . 443",
        "firewall-allow: 198.18.100.9 . tcp . 443 . 198.18.100.0/24",
        "firewall-allow: 198.18.100.9 . tcp . 443 . 198.19.2.1",
        "firewall-allow: 198.19.2.1 . tcp . 443 . 198.18.100.0/24",
        "firewall-allow: 198.19.2.1 . tcp . 443 . 198.19.2.1",
        "firewall-ips: 198.18.100.9 . tcp . 443",
        "firewall-ips: 198.19.2.1 . tcp . 443",
        "hairpin: 198.18.0.10 . 198.18.0.10",
        "service-addrs: 198.18.100.9",
        "service-addrs: 198.19.0.50",
        "service-addrs: 198.19.2.1",
        "vip-backends-tcp: 198.18.100.9 . 443 . 0 : 198.18.0.10 . 8443",
        "vip-backends-tcp: 198.19.0.50 . 443 . 0 : 198.18.0.10 . 8443",
        "vip-backends-tcp: 198.19.2.1 . 443 . 0 : 198.18.0.10 . 8443",
        "vip-dispatch: 198.18.100.9 . tcp . 443 : goto lb-vip-tcp-1",
        "vip-dispatch: 198.19.0.50 . tcp . 443 : goto lb-vip-tcp-1",
        "vip-dispatch: 198.19.2.1 . tcp . 443 : goto lb-vip-tcp-1",
      ],
    };
  })(),
  (() => {
    const aff = service("aff", ["198.19.0.60"], [port(80, 8080)], {
      sessionAffinity: "ClientIP",
      sessionAffinityTimeoutSeconds: 30,
    });
    return {
      name: "ClientIP affinity (IPv4): affinity chain and a record chain per timeout",
      services: [aff],
      sets: [endpointSet(aff, [ep("198.18.0.10"), ep("198.18.0.11")])],
      expected: [
        "affinity-vip-timeouts: 198.19.0.60 . tcp . 80 : goto affinity-record-30",
        "chain aff-vip-tcp-2: meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 2 map @vip-backends-tcp",
        "chain aff-vip-tcp-2: meta l4proto tcp dnat ip to ip saddr . ip daddr . th dport map @affinity-tcp",
        ...["sctp", "tcp", "udp"].map((p) =>
          `chain affinity-record-30: meta l4proto ${p} update @affinity-${p} { ip saddr . ct original ip daddr . ct original proto-dst timeout 30s : ip daddr . th dport }`
        ),
        'cluster-ips: 198.19.0.60 comment "default/aff"',
        "hairpin: 198.18.0.10 . 198.18.0.10",
        "hairpin: 198.18.0.11 . 198.18.0.11",
        "service-addrs: 198.19.0.60",
        "vip-backends-tcp: 198.19.0.60 . 80 . 0 : 198.18.0.10 . 8080",
        "vip-backends-tcp: 198.19.0.60 . 80 . 1 : 198.18.0.11 . 8080",
        "vip-dispatch: 198.19.0.60 . tcp . 80 : goto aff-vip-tcp-2",
      ],
    };
  })(),
  (() => {
    const aff = service("aff6", ["2001:db8:ffff::60"], [port(80, 8080)], {
      sessionAffinity: "ClientIP",
      sessionAffinityTimeoutSeconds: 30,
    });
    const H = (d: string, p: string, seed: string) =>
      `jhash ip6 saddr . ${d} . meta l4proto . ${p} mod 4294967295 seed ${seed}`;
    const key = (d: string, p: string) => `${H(d, p, "0x53474131")} . ${H(d, p, "0x53474132")}`;
    return {
      name: "ClientIP affinity (IPv6): hashed client key, port from a static map",
      services: [aff],
      sets: [endpointSet(aff, [ep("2001:db8::a")])],
      family: "ip6" as const,
      expected: [
        "affinity-vip-ports: 2001:db8:ffff::60 . tcp . 80 : 8080",
        "affinity-vip-timeouts: 2001:db8:ffff::60 . tcp . 80 : goto affinity-record-30",
        "chain aff-vip-tcp-1: meta l4proto tcp dnat ip6 to ip6 daddr . th dport . numgen random mod 1 map @vip-backends-tcp",
        `chain aff-vip-tcp-1: meta l4proto tcp dnat ip6 to ${
          key("ip6 daddr", "th dport")
        } map @affinity : ip6 daddr . meta l4proto . th dport map @affinity-vip-ports`,
        ...["sctp", "tcp", "udp"].map((p) =>
          `chain affinity-record-30: meta l4proto ${p} update @affinity { ${
            key("ct original ip6 daddr", "ct original proto-dst")
          } timeout 30s : ip6 daddr }`
        ),
        'cluster-ips: 2001:db8:ffff::60 comment "default/aff6"',
        "hairpin: 2001:db8::a . 2001:db8::a",
        "service-addrs: 2001:db8:ffff::60",
        "vip-backends-tcp: 2001:db8:ffff::60 . 80 . 0 : 2001:db8::a . 8080",
        "vip-dispatch: 2001:db8:ffff::60 . tcp . 80 : goto aff-vip-tcp-1",
      ],
    };
  })(),
  (() => {
    const dual = service("dual", ["198.19.0.70", "2001:db8:ffff::70"], [port(80, 8080)]);
    return {
      name: "dual-stack: the IPv6 table has the IPv6 VIP and only IPv6 endpoints",
      services: [dual],
      sets: [endpointSet(dual, [ep("198.18.0.10"), ep("2001:db8::a"), ep("2001:db8::b")])],
      family: "ip6" as const,
      expected: [
        "chain lb-vip-tcp-2: meta l4proto tcp dnat ip6 to ip6 daddr . th dport . numgen random mod 2 map @vip-backends-tcp",
        'cluster-ips: 2001:db8:ffff::70 comment "default/dual"',
        "hairpin: 2001:db8::a . 2001:db8::a",
        "hairpin: 2001:db8::b . 2001:db8::b",
        "service-addrs: 2001:db8:ffff::70",
        "vip-backends-tcp: 2001:db8:ffff::70 . 80 . 0 : 2001:db8::a . 8080",
        "vip-backends-tcp: 2001:db8:ffff::70 . 80 . 1 : 2001:db8::b . 8080",
        "vip-dispatch: 2001:db8:ffff::70 . tcp . 80 : goto lb-vip-tcp-2",
      ],
    };
  })(),
  (() => {
    const other = service("other", ["198.19.0.80"], [port(80)], {
      labels: { "service.kubernetes.io/service-proxy-name": "cilium" },
    });
    const name = service("extname", [], [], { type: "ExternalName", externalName: "example.org" });
    const headless = service("headless", [], [port(80)], { headless: true });
    const pending = service("pending", [], [port(80)]);
    const v6only = service("v6only", ["2001:db8:ffff::90"], [port(80)]);
    return {
      name: "skipped: other proxy, ExternalName, headless, no VIP yet, no VIP of the family",
      services: [other, name, headless, pending, v6only],
      sets: [endpointSet(other, [ep("198.18.0.10")]), endpointSet(headless, [ep("198.18.0.11")])],
      expected: [],
    };
  })(),
  {
    name: "options: overlapping cluster CIDRs merged, DNS notrack binds, v4-only NodePort CIDRs",
    services: [],
    sets: [],
    options: {
      clusterCidrs: [cidr("198.18.0.0/16"), cidr("198.18.5.0/24"), cidr("198.18.7.7/32")],
      nodeName: "node-a",
      nodePortAddresses: [cidr("198.18.100.0/24")],
      dnsNotrack: [{ address: "198.18.0.1", port: 53 }, { address: "2001:db8::1", port: 53 }],
      serviceCidrs: [cidr("198.19.0.0/16")],
    },
    expected: [],
  },
];

for (const c of CASES) {
  Deno.test(`render: ${c.name}`, () => {
    const options = c.options ?? BARE;
    const table = tableOf(c.services, c.sets, c.family ?? "ip", options);
    assertEquals(contentLines(table, options), c.expected, c.name);
  });
}

Deno.test("render: IPv6 affinity with endpoints on different ports is rendered off, with a warning", () => {
  const aff = service("aff6", ["2001:db8:ffff::60"], [port(80, "http", "TCP", "http")], {
    sessionAffinity: "ClientIP",
  });
  const rs = renderRuleset(
    snapshotOf([aff], [
      endpointSet(aff, [ep("2001:db8::a")], [8080], "a"),
      endpointSet(aff, [ep("2001:db8::b")], [8081], "b"),
    ]),
    BARE,
  );
  const v6 = rs.tables[1];
  assertEquals(
    v6.elements.get("vip-dispatch")!.get("2001:db8:ffff::60 . tcp . 80"),
    "goto lb-vip-tcp-2",
    "plain random selection",
  );
  assertEquals(rs.warnings, [
    'service "default/aff6" port 80/TCP: ClientIP affinity over IPv6 needs every endpoint on one target port (found 8080, 8081); affinity is off for this port',
  ], "warnings");
});

Deno.test("render: selection is even by construction for every endpoint count 1..300", () => {
  for (let n = 1; n <= 300; n++) {
    const eps = Array.from({ length: n }, (_, i) => ep(`198.18.${(i >> 8) + 1}.${i & 255}`));
    const table = tableOf([web], [endpointSet(web, eps)]);
    const chain = table.elements.get("vip-dispatch")!.get("198.19.0.10 . tcp . 80")!.slice(5);
    const pick = table.chains.get(chain)!.rules[0].stmts[0];
    assert(chain === `lb-vip-tcp-${n}`, `n=${n}: dispatched to ${chain}`);
    assert(pick.s === "dnat", "the lb chain's rule is a dnat");
    const numgen = pick.key[pick.key.length - 1];
    assert(numgen.e === "numgen", "the last key part is numgen");
    const slots = numgen.mod;
    const perEndpoint = new Map<string, number>();
    for (let s = 0; s < slots; s++) {
      const target = table.elements.get("vip-backends-tcp")!.get(`198.19.0.10 . 80 . ${s}`);
      assert(target !== undefined, `n=${n}: slot ${s} of ${slots} has no endpoint (a miss)`);
      perEndpoint.set(target, (perEndpoint.get(target) ?? 0) + 1);
    }
    assertEquals(perEndpoint.size, n, `n=${n}: every endpoint has a slot`);
    const fair = slots / n;
    const worst = Math.max(...perEndpoint.values()) / fair;
    assert(worst <= 1.1, `n=${n}: an endpoint gets ${worst.toFixed(3)}x its fair share`);
  }
});

Deno.test("render: a fragment is a pure function of the entry and options", () => {
  const snap = snapshotOf([web], [endpointSet(web, [ep("198.18.0.10")])]);
  const entry = snap.services.get("default/web")!;
  assertEquals(
    renderServiceFragment(entry, "ip", LAB_OPTIONS),
    renderServiceFragment(entry, "ip", LAB_OPTIONS),
    "same input, same fragment",
  );
});
