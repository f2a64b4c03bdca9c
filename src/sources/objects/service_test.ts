import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { formatError, isWarning } from "./validate.ts";
import { parseService } from "./service.ts";
import { BASE_SERVICE, svc } from "../../../tests/support/object_fixtures.ts";
import type { Service } from "../../model/types.ts";
import { cidr, ip } from "../../../tests/support/model_values.ts";

Deno.test("parseService: valid services become model objects", async (t) => {
  const cases: { name: string; obj: unknown; want: Partial<Service> }[] = [
    { name: "defaults", obj: svc(), want: {} },
    {
      name: "namespace; only the labels and annotations svcgate acts on are kept, sorted",
      obj: svc({}, {
        namespace: "prod",
        labels: {
          b: "2",
          "service.kubernetes.io/service-proxy-name": "other",
          a: "1",
          "app.kubernetes.io/name": "web",
          "service.kubernetes.io/headless": "",
        },
        annotations: {
          "svcgate.io/health-check-port": "8080",
          "kubectl.kubernetes.io/last-applied-configuration": '{"kind":"Service"}',
          "svcgate.io/health-check": "http:/healthz",
        },
      }),
      want: {
        namespace: "prod",
        labels: {
          "service.kubernetes.io/headless": "",
          "service.kubernetes.io/service-proxy-name": "other",
        },
        annotations: {
          "svcgate.io/health-check": "http:/healthz",
          "svcgate.io/health-check-port": "8080",
        },
      },
    },
    {
      name: "single clusterIP",
      obj: svc({ clusterIP: "198.19.0.10" }),
      want: { clusterIPs: [ip("198.19.0.10")], ipFamilies: [4] },
    },
    {
      name: "dual-stack clusterIPs canonicalized, clusterIP equal to the first",
      obj: svc({
        clusterIP: "2001:DB8:0::0:10",
        clusterIPs: ["2001:db8::10", "198.19.0.10"],
        ipFamilyPolicy: "RequireDualStack",
      }),
      want: {
        clusterIPs: [ip("2001:db8::10"), ip("198.19.0.10")],
        ipFamilies: [6, 4],
        ipFamilyPolicy: "RequireDualStack",
      },
    },
    {
      name: "headless without ports",
      obj: svc({ clusterIP: "None", ports: [] }),
      want: { headless: true, ports: [] },
    },
    {
      name: "headless via clusterIPs",
      obj: svc({ clusterIPs: ["None"] }),
      want: { headless: true },
    },
    {
      name: "named ports, protocols, named and numeric targetPort",
      obj: svc({
        ports: [
          { name: "http", port: 80, targetPort: "http-alt" },
          { name: "dns", port: 53, protocol: "UDP", targetPort: 5353 },
          { name: "sctp", port: 9, protocol: "SCTP" },
        ],
      }),
      want: {
        ports: [
          { name: "http", protocol: "TCP", port: 80, targetPort: "http-alt" },
          { name: "dns", protocol: "UDP", port: 53, targetPort: 5353 },
          { name: "sctp", protocol: "SCTP", port: 9, targetPort: 9 },
        ],
      },
    },
    {
      name: "same port number on two protocols",
      obj: svc({
        ports: [{ name: "dns-tcp", port: 53 }, { name: "dns-udp", port: 53, protocol: "UDP" }],
      }),
      want: {
        ports: [
          { name: "dns-tcp", protocol: "TCP", port: 53, targetPort: 53 },
          { name: "dns-udp", protocol: "UDP", port: 53, targetPort: 53 },
        ],
      },
    },
    {
      name: "NodePort accepts any node port 1-65535 and external traffic policy",
      obj: svc({
        type: "NodePort",
        ports: [{ port: 80, nodePort: 8080 }],
        externalTrafficPolicy: "Local",
      }),
      want: {
        type: "NodePort",
        ports: [{ name: "", protocol: "TCP", port: 80, targetPort: 80, nodePort: 8080 }],
        externalTrafficPolicy: "Local",
      },
    },
    {
      name: "LoadBalancer with ingress IPs and source ranges canonicalized",
      obj: svc(
        {
          type: "LoadBalancer",
          ports: [{ port: 443, nodePort: 30443 }],
          loadBalancerSourceRanges: ["198.18.7.1/16", "2001:db8:0::/48", "198.18.0.0/16"],
        },
        {},
        {
          status: {
            loadBalancer: { ingress: [{ ip: "198.19.200.1" }, { hostname: "lb.example" }] },
          },
        },
      ),
      want: {
        type: "LoadBalancer",
        ports: [{ name: "", protocol: "TCP", port: 443, targetPort: 443, nodePort: 30443 }],
        loadBalancerIPs: [ip("198.19.200.1")],
        loadBalancerSourceRanges: [cidr("198.18.0.0/16"), cidr("2001:db8::/48")],
      },
    },
    {
      name: "ingress IPs are ignored unless type is LoadBalancer",
      obj: svc({}, {}, { status: { loadBalancer: { ingress: [{ ip: "198.19.200.1" }] } } }),
      want: {},
    },
    {
      name: "externalIPs canonicalized and external traffic policy allowed with them",
      obj: svc({ externalIPs: ["2001:DB8::5", "198.19.100.1"], externalTrafficPolicy: "Local" }),
      want: {
        externalIPs: [ip("2001:db8::5"), ip("198.19.100.1")],
        externalTrafficPolicy: "Local",
      },
    },
    {
      name: "ClientIP affinity default timeout",
      obj: svc({ sessionAffinity: "ClientIP" }),
      want: { sessionAffinity: "ClientIP", sessionAffinityTimeoutSeconds: 10800 },
    },
    {
      name: "ClientIP affinity explicit timeout",
      obj: svc({
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
      }),
      want: { sessionAffinity: "ClientIP", sessionAffinityTimeoutSeconds: 60 },
    },
    {
      name: "internal traffic policy and publishNotReadyAddresses",
      obj: svc({ internalTrafficPolicy: "Local", publishNotReadyAddresses: true }),
      want: { internalTrafficPolicy: "Local", publishNotReadyAddresses: true },
    },
    {
      name: "ExternalName without ports, trailing dot removed",
      obj: svc({ type: "ExternalName", externalName: "db.example.org.", ports: undefined }),
      want: { type: "ExternalName", externalName: "db.example.org", ports: [] },
    },
    {
      name: "PreferDualStack without addresses requests both families",
      obj: svc({ ipFamilyPolicy: "PreferDualStack" }),
      want: { ipFamilies: [4, 6], ipFamilyPolicy: "PreferDualStack" },
    },
    {
      name: "explicit ipFamilies order",
      obj: svc({ ipFamilies: ["IPv6"] }),
      want: { ipFamilies: [6] },
    },
    {
      name: "selector and unused known fields are accepted",
      obj: svc({
        selector: { app: "web" },
        loadBalancerClass: "x",
      }),
      want: {},
    },
    {
      name: "trafficDistribution",
      obj: svc({ trafficDistribution: "PreferSameNode" }),
      want: { trafficDistribution: "PreferSameNode" },
    },
    {
      name: "API list items carry no apiVersion or kind",
      obj: { metadata: { name: "web", namespace: "kube-system" }, spec: { ports: [{ port: 80 }] } },
      want: { namespace: "kube-system" },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { value, errors } = parseService(c.obj, "s.yaml#1");
      assertEquals(errors.map(formatError), []);
      assertEquals(value, { ...BASE_SERVICE, ...c.want });
    });
  }
});

Deno.test("parseService: bad input is rejected with the exact error", async (t) => {
  const cases: { name: string; obj: unknown; errors: string[] }[] = [
    {
      name: "not an object",
      obj: "web",
      errors: ['s.yaml#1: expected a Service object, got "web"'],
    },
    {
      name: "wrong apiVersion",
      obj: svc({}, {}, { apiVersion: "v2" }),
      errors: ['s.yaml#1 apiVersion: "v2" is not supported for kind Service (expected "v1")'],
    },
    {
      name: "wrong kind",
      obj: svc({}, {}, { kind: "Pod" }),
      errors: ['s.yaml#1 kind: "Pod" is not "Service"'],
    },
    {
      name: "spec missing",
      obj: { apiVersion: "v1", kind: "Service", metadata: { name: "web" } },
      errors: ["s.yaml#1 spec: missing; a Service needs a spec with its ports"],
    },
    {
      name: "spec not an object",
      obj: { apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: [] },
      errors: ["s.yaml#1 spec: expected an object, got []"],
    },
    {
      name: "unknown type",
      obj: svc({ type: "Internal" }),
      errors: [
        's.yaml#1 spec.type: "Internal" is not a service type (ClusterIP, NodePort, LoadBalancer, ExternalName)',
      ],
    },
    {
      name: "externalIP invalid",
      obj: svc({ externalIPs: ["198.19.0.1", "not-an-ip"] }),
      errors: ['s.yaml#1 spec.externalIPs[1]: "not-an-ip" is not an IP address'],
    },
    {
      name: "externalIPs not a list",
      obj: svc({ externalIPs: "198.19.0.1" }),
      errors: ['s.yaml#1 spec.externalIPs: expected a list, got "198.19.0.1"'],
    },
    {
      name: "ingress IP invalid",
      obj: svc({ type: "LoadBalancer" }, {}, {
        status: { loadBalancer: { ingress: [{ ip: "198.19.0" }] } },
      }),
      errors: ['s.yaml#1 status.loadBalancer.ingress[0].ip: "198.19.0" is not an IP address'],
    },
    {
      name: "source range prefix invalid",
      obj: svc({ type: "LoadBalancer", loadBalancerSourceRanges: ["198.18.0.0/33"] }),
      errors: [
        's.yaml#1 spec.loadBalancerSourceRanges[0]: "198.18.0.0/33" is not a CIDR: prefix is invalid',
      ],
    },
    {
      name: "source range without prefix",
      obj: svc({ type: "LoadBalancer", loadBalancerSourceRanges: ["198.18.0.1"] }),
      errors: [
        's.yaml#1 spec.loadBalancerSourceRanges[0]: "198.18.0.1" is not a CIDR: missing "/prefix"',
      ],
    },
    {
      name: "unknown session affinity",
      obj: svc({ sessionAffinity: "Cookie" }),
      errors: [
        's.yaml#1 spec.sessionAffinity: "Cookie" is not a session affinity (None, ClientIP)',
      ],
    },
    {
      name: "affinity timeout zero",
      obj: svc({
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } },
      }),
      errors: [
        "s.yaml#1 spec.sessionAffinityConfig.clientIP.timeoutSeconds: 0 is not a timeout (1-86400 seconds)",
      ],
    },
    {
      name: "affinity timeout too large",
      obj: svc({
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 86401 } },
      }),
      errors: [
        "s.yaml#1 spec.sessionAffinityConfig.clientIP.timeoutSeconds: 86401 is not a timeout (1-86400 seconds)",
      ],
    },
    {
      name: "affinity config without ClientIP",
      obj: svc({ sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }),
      errors: [
        's.yaml#1 spec.sessionAffinityConfig: only allowed when sessionAffinity is "ClientIP", got "None"',
      ],
    },
    {
      name: "unknown internal traffic policy",
      obj: svc({ internalTrafficPolicy: "Node" }),
      errors: [
        's.yaml#1 spec.internalTrafficPolicy: "Node" is not a traffic policy (Cluster, Local)',
      ],
    },
    {
      name: "publishNotReadyAddresses not a boolean",
      obj: svc({ publishNotReadyAddresses: "yes" }),
      errors: [
        's.yaml#1 spec.publishNotReadyAddresses: "yes" is not a boolean (true or false)',
      ],
    },
    {
      name: "ExternalName without externalName",
      obj: svc({ type: "ExternalName" }),
      errors: [
        "s.yaml#1 spec.externalName: missing; type ExternalName needs a DNS name to point at",
      ],
    },
    {
      name: "ExternalName invalid",
      obj: svc({ type: "ExternalName", externalName: "db_1.example.org" }),
      errors: [
        's.yaml#1 spec.externalName: "db_1.example.org" is not a DNS name (a DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters)',
      ],
    },
    {
      name: "several problems are all reported",
      obj: svc({ type: "Bad", ports: [{ port: 0 }] }, { name: "Bad" }),
      errors: [
        's.yaml#1 metadata.name: "Bad" is not a valid Service name (a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters)',
        's.yaml#1 spec.type: "Bad" is not a service type (ClusterIP, NodePort, LoadBalancer, ExternalName)',
        "s.yaml#1 spec.ports[0].port: 0 is not a port (1-65535)",
      ],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { value, errors } = parseService(c.obj, "s.yaml#1");
      assertEquals(errors.map(formatError), c.errors);
      assertEquals(value, undefined);
    });
  }
});

Deno.test("warnUnknownFields reports typos as warnings and keeps the object", () => {
  const obj = svc(
    { ports: [{ port: 80, targetport: 8080 }], selectr: { app: "web" } },
    { lables: { a: "b" } },
    { stauts: {} },
  );
  const r = parseService(obj, "s.yaml#1", { warnUnknownFields: true });
  assertEquals(r.errors.map(formatError), [
    "s.yaml#1 stauts: unknown field, ignored",
    "s.yaml#1 metadata.lables: unknown field, ignored",
    "s.yaml#1 spec.selectr: unknown field, ignored",
    "s.yaml#1 spec.ports[0].targetport: unknown field, ignored",
  ]);
  assertEquals(r.errors.every(isWarning), true);
  assertEquals(r.value?.ports[0].targetPort, 80);
  // Off by default: objects from the API may carry fields of newer Kubernetes versions.
  assertEquals(parseService(obj, "s.yaml#1").errors, []);
});

Deno.test("parsed objects are frozen", () => {
  const { value } = parseService(svc(), "s.yaml#1");
  assertEquals(Object.isFrozen(value), true);
  assertEquals(Object.isFrozen(value?.ports), true);
  assertEquals(Object.isFrozen(value?.ports[0]), true);
});

Deno.test("external traffic policy on an internal service is ignored with a warning", () => {
  const r = parseService(svc({ externalTrafficPolicy: "Local" }), "s.yaml#1");
  assertEquals(r.errors.map(formatError), [
    's.yaml#1 spec.externalTrafficPolicy: "Local" is ignored: only externally reachable services (type NodePort or LoadBalancer, or with externalIPs) have external traffic',
  ]);
  assertEquals(r.errors.every(isWarning), true);
  assertEquals(r.value?.externalTrafficPolicy, "Cluster");
});

Deno.test("healthCheckNodePort: kept for a LoadBalancer with policy Local, else ignored with a warning", () => {
  const lb = { type: "LoadBalancer", ports: [{ port: 80, nodePort: 30080 }] };
  // [what, spec, kept port, problems]
  const table: [string, Record<string, unknown>, number | undefined, string[]][] = [
    [
      "LoadBalancer, Local",
      { ...lb, externalTrafficPolicy: "Local", healthCheckNodePort: 30300 },
      30300,
      [],
    ],
    ["LoadBalancer, Cluster", { ...lb, healthCheckNodePort: 30300 }, undefined, [
      's.yaml#1 spec.healthCheckNodePort: 30300 is ignored: only a LoadBalancer service with externalTrafficPolicy "Local" has a health check node port',
    ]],
    [
      "not a port",
      { ...lb, externalTrafficPolicy: "Local", healthCheckNodePort: 70000 },
      undefined,
      [
        "s.yaml#1 spec.healthCheckNodePort: 70000 is not a port (1-65535)",
      ],
    ],
  ];
  for (const [what, spec, port, problems] of table) {
    const r = parseService(svc(spec), "s.yaml#1");
    assertEquals(r.errors.map(formatError), problems, what);
    assertEquals(r.value?.healthCheckNodePort, port, what);
  }
});

Deno.test("an unknown trafficDistribution is ignored with a warning", () => {
  const r = parseService(svc({ trafficDistribution: "PreferNearby" }), "s.yaml#1");
  assertEquals(r.errors.map(formatError), [
    's.yaml#1 spec.trafficDistribution: "PreferNearby" is not known (PreferClose, PreferSameZone, PreferSameNode); ignored',
  ]);
  assertEquals(r.value?.trafficDistribution, undefined);
});

Deno.test("load balancer ingress with ipMode Proxy is not programmed (no DNAT on the node), as kube-proxy", () => {
  const r = parseService(
    svc({ type: "LoadBalancer", ports: [{ port: 80, nodePort: 30080 }] }, {}, {
      status: {
        loadBalancer: {
          ingress: [
            { ip: "198.19.2.1", ipMode: "Proxy" },
            { ip: "198.19.2.2", ipMode: "VIP" },
            { ip: "198.19.2.3" },
          ],
        },
      },
    }),
    "s.yaml#1",
  );
  assertEquals(r.errors.map(formatError), []);
  assertEquals(r.value?.loadBalancerIPs, [ip("198.19.2.2"), ip("198.19.2.3")]);
  const bad = parseService(
    svc({ type: "LoadBalancer" }, {}, {
      status: { loadBalancer: { ingress: [{ ip: "198.19.2.1", ipMode: "Tunnel" }] } },
    }),
    "s.yaml#1",
  );
  assertEquals(bad.errors.map(formatError), [
    's.yaml#1 status.loadBalancer.ingress[0].ipMode: "Tunnel" is not known (VIP, Proxy); this IP is not programmed',
  ]);
  assertEquals(bad.value?.loadBalancerIPs, []);
});
