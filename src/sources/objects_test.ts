import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  formatError,
  isWarning,
  objectId,
  parseEndpoints,
  parseEndpointSlice,
  parseObject,
  parseService,
  rawObjectId,
} from "./objects.ts";
import type { EndpointSet, Service } from "../model/types.ts";

type Obj = Record<string, unknown>;

/** A valid Service with the given spec fields and metadata fields merged in. */
function svc(spec: Obj = {}, metadata: Obj = {}, extra: Obj = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", ...metadata },
    spec: { ports: [{ port: 80 }], ...spec },
    ...extra,
  };
}

/** A valid EndpointSlice with the given fields merged in. */
function slice(fields: Obj = {}, labels: Obj = { "kubernetes.io/service-name": "web" }): Obj {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: "web-1", labels },
    addressType: "IPv4",
    endpoints: [{ addresses: ["198.18.0.10"] }],
    ports: [{ port: 8080 }],
    ...fields,
  };
}

/** A set's fields as plain data (parsed sets keep their endpoints packed: model/endpoint_set.ts). */
function plainSet(set: EndpointSet | undefined) {
  if (!set) return set;
  const { namespace, serviceName, id, ports, endpoints } = set;
  return { namespace, serviceName, id, ports, endpoints };
}

function endpoints(subsets: unknown, metadata: Obj = { name: "web" }): Obj {
  return { apiVersion: "v1", kind: "Endpoints", metadata, subsets };
}

const BASE_SERVICE: Service = {
  namespace: "default",
  name: "web",
  type: "ClusterIP",
  clusterIPs: [],
  headless: false,
  ports: [{ name: "", protocol: "TCP", port: 80, targetPort: 80 }],
  externalIPs: [],
  loadBalancerIPs: [],
  loadBalancerSourceRanges: [],
  sessionAffinity: "None",
  sessionAffinityTimeoutSeconds: 10800,
  internalTrafficPolicy: "Cluster",
  externalTrafficPolicy: "Cluster",
  publishNotReadyAddresses: false,
  ipFamilies: [],
  labels: {},
  annotations: {},
};

Deno.test("formatError joins where, path and message", () => {
  assertEquals(
    formatError({
      where: "services.yaml#3",
      path: "spec.ports[1].port",
      message: "70000 is not a port (1-65535)",
    }),
    "services.yaml#3 spec.ports[1].port: 70000 is not a port (1-65535)",
  );
  assertEquals(formatError({ where: "a.yaml#1", path: "", message: "m" }), "a.yaml#1: m");
  assertEquals(formatError({ where: "", path: "kind", message: "m" }), "kind: m");
});

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
      want: { clusterIPs: ["198.19.0.10"], ipFamilies: [4] },
    },
    {
      name: "dual-stack clusterIPs canonicalized, clusterIP equal to the first",
      obj: svc({
        clusterIP: "2001:DB8:0::0:10",
        clusterIPs: ["2001:db8::10", "198.19.0.10"],
        ipFamilyPolicy: "RequireDualStack",
      }),
      want: {
        clusterIPs: ["2001:db8::10", "198.19.0.10"],
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
        loadBalancerIPs: ["198.19.200.1"],
        loadBalancerSourceRanges: ["198.18.0.0/16", "2001:db8::/48"],
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
      want: { externalIPs: ["2001:db8::5", "198.19.100.1"], externalTrafficPolicy: "Local" },
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
        trafficDistribution: "PreferClose",
      }),
      want: {},
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
      name: "port out of range",
      obj: svc({ ports: [{ name: "a", port: 80 }, { name: "b", port: 70000 }] }),
      errors: ["s.yaml#1 spec.ports[1].port: 70000 is not a port (1-65535)"],
    },
    {
      name: "port as a string",
      obj: svc({ ports: [{ port: "80" }] }),
      errors: ['s.yaml#1 spec.ports[0].port: "80" is not a port (1-65535)'],
    },
    {
      name: "port not an integer",
      obj: svc({ ports: [{ port: 80.5 }] }),
      errors: ["s.yaml#1 spec.ports[0].port: 80.5 is not a port (1-65535)"],
    },
    {
      name: "port missing",
      obj: svc({ ports: [{ name: "http" }] }),
      errors: ["s.yaml#1 spec.ports[0].port: missing; a port number (1-65535) is required"],
    },
    {
      name: "metadata missing",
      obj: { apiVersion: "v1", kind: "Service", spec: { ports: [{ port: 80 }] } },
      errors: ["s.yaml#1 metadata: missing; every Service needs metadata.name"],
    },
    {
      name: "name missing",
      obj: svc({}, { name: undefined, generateName: "web-" }),
      errors: ["s.yaml#1 metadata.name: missing; every Service needs a name"],
    },
    {
      name: "name not a DNS-1035 label",
      obj: svc({}, { name: "1web" }),
      errors: [
        's.yaml#1 metadata.name: "1web" is not a valid Service name (a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters)',
      ],
    },
    {
      name: "name with uppercase",
      obj: svc({}, { name: "Web" }),
      errors: [
        's.yaml#1 metadata.name: "Web" is not a valid Service name (a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters)',
      ],
    },
    {
      name: "name too long",
      obj: svc({}, { name: "a".repeat(64) }),
      errors: [
        `s.yaml#1 metadata.name: "${
          "a".repeat(
            64,
          )
        }" is not a valid Service name (a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters)`,
      ],
    },
    {
      name: "namespace invalid",
      obj: svc({}, { namespace: "Prod_1" }),
      errors: [
        's.yaml#1 metadata.namespace: "Prod_1" is not a valid namespace (a DNS-1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters)',
      ],
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
      name: "clusterIP not an address",
      obj: svc({ clusterIP: "198.19.0.300" }),
      errors: [
        's.yaml#1 spec.clusterIP: "198.19.0.300" is not an IP address (or "None" for a headless service)',
      ],
    },
    {
      name: "clusterIPs same family",
      obj: svc({ clusterIPs: ["198.19.0.10", "198.19.0.11"] }),
      errors: [
        's.yaml#1 spec.clusterIPs[1]: "198.19.0.11" has the same IP family as spec.clusterIPs[0] "198.19.0.10"; dual-stack needs one IPv4 and one IPv6 address',
      ],
    },
    {
      name: "clusterIPs[0] differs from clusterIP",
      obj: svc({ clusterIP: "198.19.0.10", clusterIPs: ["198.19.0.11"] }),
      errors: [
        's.yaml#1 spec.clusterIPs[0]: "198.19.0.11" does not match spec.clusterIP "198.19.0.10"',
      ],
    },
    {
      name: "three clusterIPs",
      obj: svc({ clusterIPs: ["198.19.0.10", "2001:db8::10", "2001:db8::11"] }),
      errors: [
        's.yaml#1 spec.clusterIPs: 3 addresses given; at most 2 are allowed (one per IP family): ["198.19.0.10","2001:db8::10","2001:db8::11"]',
      ],
    },
    {
      name: "None with another address",
      obj: svc({ clusterIPs: ["None", "198.19.0.10"] }),
      errors: [
        's.yaml#1 spec.clusterIPs: "None" must be the only entry, got ["None","198.19.0.10"]',
      ],
    },
    {
      name: "headless NodePort",
      obj: svc({ type: "NodePort", clusterIP: "None" }),
      errors: ['s.yaml#1 spec.clusterIP: "None" (headless) is not allowed for type NodePort'],
    },
    {
      name: "clusterIP on ExternalName",
      obj: svc({ type: "ExternalName", externalName: "db.example.org", clusterIP: "198.19.0.10" }),
      errors: [
        's.yaml#1 spec.clusterIP: "198.19.0.10" is not allowed for type ExternalName (leave it empty)',
      ],
    },
    {
      name: "no ports",
      obj: svc({ ports: [] }),
      errors: [
        "s.yaml#1 spec.ports: no ports; a Service needs at least one port unless it is headless or ExternalName",
      ],
    },
    {
      name: "ports not a list",
      obj: svc({ ports: { port: 80 } }),
      errors: ['s.yaml#1 spec.ports: expected a list, got {"port":80}'],
    },
    {
      name: "port entry null",
      obj: svc({ ports: [null] }),
      errors: ["s.yaml#1 spec.ports[0]: expected an object, got null"],
    },
    {
      name: "second port unnamed",
      obj: svc({ ports: [{ name: "http", port: 80 }, { port: 443 }] }),
      errors: [
        "s.yaml#1 spec.ports[1].name: missing; every port needs a name when a Service has more than one port",
      ],
    },
    {
      name: "duplicate port names",
      obj: svc({ ports: [{ name: "http", port: 80 }, { name: "http", port: 81 }] }),
      errors: ['s.yaml#1 spec.ports[1].name: "http" is already used by spec.ports[0]'],
    },
    {
      name: "invalid port name",
      obj: svc({ ports: [{ name: "HTTP", port: 80 }] }),
      errors: [
        's.yaml#1 spec.ports[0].name: "HTTP" is not a valid port name (a DNS-1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters)',
      ],
    },
    {
      name: "duplicate port and protocol",
      obj: svc({ ports: [{ name: "a", port: 80 }, { name: "b", port: 80, protocol: "TCP" }] }),
      errors: ["s.yaml#1 spec.ports[1]: port 80/TCP is already used by spec.ports[0]"],
    },
    {
      name: "unknown protocol",
      obj: svc({ ports: [{ port: 80, protocol: "tcp" }] }),
      errors: ['s.yaml#1 spec.ports[0].protocol: "tcp" is not a protocol (TCP, UDP, SCTP)'],
    },
    {
      name: "targetPort out of range",
      obj: svc({ ports: [{ port: 80, targetPort: 65536 }] }),
      errors: ["s.yaml#1 spec.ports[0].targetPort: 65536 is not a port (1-65535)"],
    },
    {
      name: "targetPort name too long",
      obj: svc({ ports: [{ port: 80, targetPort: "a-very-long-port-name" }] }),
      errors: [
        's.yaml#1 spec.ports[0].targetPort: "a-very-long-port-name" is not a port number or an IANA service name: 1-15 characters a-z, 0-9 and "-", at least one letter, no leading, trailing or double "-"',
      ],
    },
    {
      name: "targetPort quoted number",
      obj: svc({ ports: [{ port: 80, targetPort: "8080" }] }),
      errors: [
        's.yaml#1 spec.ports[0].targetPort: "8080" is not a port number or an IANA service name: 1-15 characters a-z, 0-9 and "-", at least one letter, no leading, trailing or double "-"',
      ],
    },
    {
      name: "targetPort with double dash",
      obj: svc({ ports: [{ port: 80, targetPort: "http--alt" }] }),
      errors: [
        's.yaml#1 spec.ports[0].targetPort: "http--alt" is not a port number or an IANA service name: 1-15 characters a-z, 0-9 and "-", at least one letter, no leading, trailing or double "-"',
      ],
    },
    {
      name: "targetPort of another type",
      obj: svc({ ports: [{ port: 80, targetPort: true }] }),
      errors: ["s.yaml#1 spec.ports[0].targetPort: true is not a port number or a port name"],
    },
    {
      name: "nodePort on ClusterIP",
      obj: svc({ ports: [{ port: 80, nodePort: 30080 }] }),
      errors: [
        "s.yaml#1 spec.ports[0].nodePort: 30080 is not allowed for type ClusterIP (only NodePort and LoadBalancer)",
      ],
    },
    {
      name: "nodePort out of range",
      obj: svc({ type: "NodePort", ports: [{ port: 80, nodePort: 70000 }] }),
      errors: ["s.yaml#1 spec.ports[0].nodePort: 70000 is not a port (1-65535)"],
    },
    {
      name: "duplicate nodePort",
      obj: svc({
        type: "NodePort",
        ports: [{ name: "a", port: 80, nodePort: 30080 }, { name: "b", port: 81, nodePort: 30080 }],
      }),
      errors: ["s.yaml#1 spec.ports[1].nodePort: 30080/TCP is already used by spec.ports[0]"],
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
      name: "unknown IP family",
      obj: svc({ ipFamilies: ["IPv5"] }),
      errors: ['s.yaml#1 spec.ipFamilies[0]: "IPv5" is not an IP family (IPv4, IPv6)'],
    },
    {
      name: "IP family listed twice",
      obj: svc({ ipFamilies: ["IPv4", "IPv4"] }),
      errors: ['s.yaml#1 spec.ipFamilies[1]: "IPv4" is listed twice'],
    },
    {
      name: "IP family does not match clusterIP",
      obj: svc({ clusterIP: "198.19.0.10", ipFamilies: ["IPv6"] }),
      errors: [
        's.yaml#1 spec.ipFamilies[0]: "IPv6" does not match the family of spec.clusterIP "198.19.0.10"',
      ],
    },
    {
      name: "SingleStack with two families",
      obj: svc({ ipFamilyPolicy: "SingleStack", ipFamilies: ["IPv4", "IPv6"] }),
      errors: [
        's.yaml#1 spec.ipFamilyPolicy: "SingleStack" allows one IP family, but 2 are requested',
      ],
    },
    {
      name: "unknown IP family policy",
      obj: svc({ ipFamilyPolicy: "DualStack" }),
      errors: [
        's.yaml#1 spec.ipFamilyPolicy: "DualStack" is not an IP family policy (SingleStack, PreferDualStack, RequireDualStack)',
      ],
    },
    {
      name: "fewer ipFamilies than clusterIPs",
      obj: svc({ clusterIPs: ["198.19.0.10", "2001:db8::10"], ipFamilies: ["IPv4"] }),
      errors: [
        "s.yaml#1 spec.ipFamilies: lists 1 family but spec.clusterIPs has 2 addresses",
      ],
    },
    {
      name: "label value not a string",
      obj: svc({}, { labels: { tier: 1 } }),
      errors: ["s.yaml#1 metadata.labels.tier: 1 is not a string (quote it)"],
    },
    {
      name: "label value invalid",
      obj: svc({}, { labels: { tier: "front end" } }),
      errors: [
        's.yaml#1 metadata.labels.tier: "front end" is not a label value: at most 63 characters of A-Z, a-z, 0-9, "-", "_" and ".", starting and ending with a letter or digit',
      ],
    },
    {
      name: "label key prefix invalid",
      obj: svc({}, { labels: { "Example.com/tier": "x" } }),
      errors: [
        's.yaml#1 metadata.labels["Example.com/tier"]: key prefix "Example.com" is not a DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters',
      ],
    },
    {
      name: "annotation value not a string",
      obj: svc({}, { annotations: { "svcgate.io/health-check-interval": 5 } }),
      errors: [
        's.yaml#1 metadata.annotations["svcgate.io/health-check-interval"]: 5 is not a string (quote it)',
      ],
    },
    {
      name: "annotation key name invalid",
      obj: svc({}, { annotations: { "svcgate.io/": "x" } }),
      errors: [
        's.yaml#1 metadata.annotations["svcgate.io/"]: key name "" must be 1-63 characters of A-Z, a-z, 0-9, "-", "_" and ".", starting and ending with a letter or digit',
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

Deno.test("parseEndpointSlice: conditions, fields and defaults", async (t) => {
  const cases: { name: string; ep: Obj; want: Obj }[] = [
    {
      name: "conditions absent: ready, serving, not terminating",
      ep: { addresses: ["198.18.0.10"] },
      want: { address: "198.18.0.10", ready: true, serving: true, terminating: false },
    },
    {
      name: "ready false: serving follows ready",
      ep: { addresses: ["198.18.0.10"], conditions: { ready: false } },
      want: { address: "198.18.0.10", ready: false, serving: false, terminating: false },
    },
    {
      name: "terminating but still serving",
      ep: {
        addresses: ["198.18.0.10"],
        conditions: { ready: false, serving: true, terminating: true },
      },
      want: { address: "198.18.0.10", ready: false, serving: true, terminating: true },
    },
    {
      name: "null conditions use defaults",
      ep: { addresses: ["198.18.0.10"], conditions: { ready: null, serving: null } },
      want: { address: "198.18.0.10", ready: true, serving: true, terminating: false },
    },
    {
      name: "only the first address is used",
      ep: { addresses: ["198.18.0.10", "198.18.0.11"] },
      want: { address: "198.18.0.10", ready: true, serving: true, terminating: false },
    },
    {
      name: "node, zone and hostname; a valid targetRef is checked, not kept",
      ep: {
        addresses: ["198.18.0.10"],
        nodeName: "node-1",
        zone: "z1",
        hostname: "web-0",
        targetRef: { kind: "Pod", name: "web-0", namespace: "default", uid: "x" },
      },
      want: {
        address: "198.18.0.10",
        ready: true,
        serving: true,
        terminating: false,
        nodeName: "node-1",
        zone: "z1",
        hostname: "web-0",
      },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { value, errors } = parseEndpointSlice(slice({ endpoints: [c.ep] }), "e.yaml#1");
      assertEquals(errors.map(formatError), []);
      assertEquals(value?.endpoints, [c.want]);
    });
  }
  await t.step("identity, ports and IPv6 canonical form", () => {
    const { value, errors } = parseEndpointSlice(
      slice({
        addressType: "IPv6",
        endpoints: [{ addresses: ["2001:DB8:0:0::a"] }],
        ports: [{ name: "http", port: 8080 }, { name: "dns", port: 53, protocol: "UDP" }],
      }),
      "e.yaml#1",
    );
    assertEquals(errors, []);
    assertEquals(plainSet(value), {
      namespace: "default",
      serviceName: "web",
      id: "web-1",
      ports: [
        { name: "http", protocol: "TCP", port: 8080 },
        { name: "dns", protocol: "UDP", port: 53 },
      ],
      endpoints: [{ address: "2001:db8::a", ready: true, serving: true, terminating: false }],
    });
  });
  await t.step("no endpoints and no ports is a valid empty slice", () => {
    const { value, errors } = parseEndpointSlice(
      slice({ endpoints: undefined, ports: undefined }),
      "e.yaml#1",
    );
    assertEquals(errors, []);
    assertEquals(value?.endpoints, []);
    assertEquals(value?.ports, []);
  });
  await t.step("FQDN slices are ignored with a warning", () => {
    const { value, errors } = parseEndpointSlice(slice({ addressType: "FQDN" }), "e.yaml#1");
    assertEquals(value, undefined);
    assertEquals(errors.map(formatError), [
      'e.yaml#1 addressType: "FQDN" slices are not used by svcgate; slice ignored',
    ]);
    assertEquals(errors.map(isWarning), [true]);
  });
});

Deno.test("parseEndpointSlice: bad input is rejected with the exact error", async (t) => {
  const cases: { name: string; obj: unknown; errors: string[] }[] = [
    {
      name: "service-name label missing",
      obj: slice({}, { app: "web" }),
      errors: [
        'e.yaml#1 metadata.labels["kubernetes.io/service-name"]: missing; an EndpointSlice names its Service in this label',
      ],
    },
    {
      name: "service-name label not a service name",
      obj: slice({}, { "kubernetes.io/service-name": "Web" }),
      errors: [
        'e.yaml#1 metadata.labels["kubernetes.io/service-name"]: "Web" is not a valid Service name (a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters)',
      ],
    },
    {
      name: "name invalid",
      obj: {
        ...slice(),
        metadata: { name: "web_1", labels: { "kubernetes.io/service-name": "web" } },
      },
      errors: [
        'e.yaml#1 metadata.name: "web_1" is not a valid EndpointSlice name (a DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters)',
      ],
    },
    {
      name: "addressType missing",
      obj: slice({ addressType: undefined }),
      errors: ["e.yaml#1 addressType: missing; expected IPv4 or IPv6"],
    },
    {
      name: "addressType unknown",
      obj: slice({ addressType: "IP" }),
      errors: ['e.yaml#1 addressType: "IP" is not an address type (IPv4, IPv6, FQDN)'],
    },
    {
      name: "address of the wrong family",
      obj: slice({ endpoints: [{ addresses: ["2001:db8::a"] }] }),
      errors: ['e.yaml#1 endpoints[0].addresses[0]: "2001:db8::a" is not an IPv4 address'],
    },
    {
      name: "address invalid",
      obj: slice({ endpoints: [{ addresses: ["198.18.0.1"] }, { addresses: ["198.18.0.256"] }] }),
      errors: ['e.yaml#1 endpoints[1].addresses[0]: "198.18.0.256" is not an IP address'],
    },
    {
      name: "addresses missing",
      obj: slice({ endpoints: [{ conditions: { ready: true } }] }),
      errors: ["e.yaml#1 endpoints[0].addresses: missing; every endpoint needs an address"],
    },
    {
      name: "addresses empty",
      obj: slice({ endpoints: [{ addresses: [] }] }),
      errors: ["e.yaml#1 endpoints[0].addresses: missing; every endpoint needs an address"],
    },
    {
      name: "condition not a boolean",
      obj: slice({ endpoints: [{ addresses: ["198.18.0.10"], conditions: { ready: "true" } }] }),
      errors: [
        'e.yaml#1 endpoints[0].conditions.ready: "true" is not a boolean (true or false)',
      ],
    },
    {
      name: "hostname invalid",
      obj: slice({ endpoints: [{ addresses: ["198.18.0.10"], hostname: "web.0" }] }),
      errors: [
        'e.yaml#1 endpoints[0].hostname: "web.0" is not a valid hostname (a DNS-1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters)',
      ],
    },
    {
      name: "nodeName invalid",
      obj: slice({ endpoints: [{ addresses: ["198.18.0.10"], nodeName: "Node 1" }] }),
      errors: [
        'e.yaml#1 endpoints[0].nodeName: "Node 1" is not a valid node name (a DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters)',
      ],
    },
    {
      name: "targetRef without name",
      obj: slice({ endpoints: [{ addresses: ["198.18.0.10"], targetRef: { kind: "Pod" } }] }),
      errors: [
        "e.yaml#1 endpoints[0].targetRef.name: missing; a targetRef names the object behind the endpoint",
      ],
    },
    {
      name: "port out of range",
      obj: slice({ ports: [{ port: 0 }] }),
      errors: ["e.yaml#1 ports[0].port: 0 is not a port (1-65535)"],
    },
    {
      name: "duplicate port names",
      obj: slice({ ports: [{ name: "http", port: 80 }, { name: "http", port: 81 }] }),
      errors: ['e.yaml#1 ports[1].name: "http" is already used by ports[0]'],
    },
    {
      name: "two unnamed ports",
      obj: slice({ ports: [{ port: 80 }, { port: 81 }] }),
      errors: ['e.yaml#1 ports[1].name: "" is already used by ports[0]'],
    },
    {
      name: "port protocol unknown",
      obj: slice({ ports: [{ port: 80, protocol: "QUIC" }] }),
      errors: ['e.yaml#1 ports[0].protocol: "QUIC" is not a protocol (TCP, UDP, SCTP)'],
    },
    {
      name: "wrong apiVersion",
      obj: slice({ apiVersion: "discovery.k8s.io/v1beta1" }),
      errors: [
        'e.yaml#1 apiVersion: "discovery.k8s.io/v1beta1" is not supported for kind EndpointSlice (expected "discovery.k8s.io/v1")',
      ],
    },
    {
      name: "endpoints not a list",
      obj: slice({ endpoints: { addresses: ["198.18.0.10"] } }),
      errors: ['e.yaml#1 endpoints: expected a list, got {"addresses":["198.18.0.10"]}'],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { value, errors } = parseEndpointSlice(c.obj, "e.yaml#1");
      assertEquals(errors.map(formatError), c.errors);
      assertEquals(value, undefined);
    });
  }
});

Deno.test("parseEndpoints: one set per subset; addresses ready, notReadyAddresses not", () => {
  const { value, errors } = parseEndpoints(
    endpoints([
      {
        addresses: [{
          ip: "198.18.0.10",
          hostname: "db-0",
          nodeName: "node-1",
          targetRef: { kind: "Pod", name: "db-0" },
        }],
        notReadyAddresses: [{ ip: "198.18.0.11" }],
        ports: [{ name: "pg", port: 5432 }],
      },
      { addresses: [{ ip: "2001:db8::0:b" }], ports: [{ port: 53, protocol: "UDP" }] },
    ], { name: "db", namespace: "data" }),
    "d.yaml#2",
  );
  assertEquals(errors, []);
  assertEquals(value?.map(plainSet), [
    {
      namespace: "data",
      serviceName: "db",
      id: "endpoints/db#0",
      ports: [{ name: "pg", protocol: "TCP", port: 5432 }],
      endpoints: [
        {
          address: "198.18.0.10",
          ready: true,
          serving: true,
          terminating: false,
          nodeName: "node-1",
          hostname: "db-0",
        },
        { address: "198.18.0.11", ready: false, serving: false, terminating: false },
      ],
    },
    {
      namespace: "data",
      serviceName: "db",
      id: "endpoints/db#1",
      ports: [{ name: "", protocol: "UDP", port: 53 }],
      endpoints: [{ address: "2001:db8::b", ready: true, serving: true, terminating: false }],
    },
  ]);
});

Deno.test("parseEndpoints: no subsets is a valid empty object", () => {
  assertEquals(parseEndpoints(endpoints(undefined), "d.yaml#1"), { value: [], errors: [] });
});

Deno.test("parseEndpoints: bad input is rejected with the exact error", async (t) => {
  const cases: { name: string; obj: unknown; errors: string[] }[] = [
    {
      name: "ip missing",
      obj: endpoints([{ addresses: [{ hostname: "db-0" }] }]),
      errors: ["d.yaml#1 subsets[0].addresses[0].ip: missing; every address needs an ip"],
    },
    {
      name: "ip invalid",
      obj: endpoints([{ notReadyAddresses: [{ ip: "db-0" }] }]),
      errors: ['d.yaml#1 subsets[0].notReadyAddresses[0].ip: "db-0" is not an IP address'],
    },
    {
      name: "ports need names when more than one",
      obj: endpoints([{ ports: [{ port: 1 }, { port: 2 }] }]),
      errors: [
        "d.yaml#1 subsets[0].ports[0].name: missing; every port needs a name when there is more than one port",
        "d.yaml#1 subsets[0].ports[1].name: missing; every port needs a name when there is more than one port",
      ],
    },
    {
      name: "subsets not a list",
      obj: endpoints({ addresses: [] }),
      errors: ['d.yaml#1 subsets: expected a list, got {"addresses":[]}'],
    },
    {
      name: "name missing",
      obj: endpoints([], {}),
      errors: ["d.yaml#1 metadata.name: missing; every Endpoints needs a name"],
    },
    {
      name: "hostname invalid",
      obj: endpoints([{ addresses: [{ ip: "198.18.0.10", hostname: "DB" }] }]),
      errors: [
        'd.yaml#1 subsets[0].addresses[0].hostname: "DB" is not a valid hostname (a DNS-1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters)',
      ],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { value, errors } = parseEndpoints(c.obj, "d.yaml#1");
      assertEquals(errors.map(formatError), c.errors);
      assertEquals(value, undefined);
    });
  }
});

Deno.test("parseObject dispatches on apiVersion and kind", async (t) => {
  await t.step("Service", () => {
    const r = parseObject(svc({}, { namespace: "prod" }), "x#1");
    assertEquals(r.value?.kind, "Service");
    assertEquals(r.value?.id, "Service prod/web");
  });
  await t.step("EndpointSlice", () => {
    const r = parseObject(slice(), "x#1");
    assertEquals(r.value?.kind, "EndpointSlice");
    assertEquals(r.value?.id, "EndpointSlice default/web-1");
  });
  await t.step("Endpoints", () => {
    const r = parseObject(endpoints([{ addresses: [{ ip: "198.18.0.1" }] }]), "x#1");
    assertEquals(r.value?.kind, "Endpoints");
    assertEquals(r.value?.id, "Endpoints default/web");
    assertEquals(r.value?.kind === "Endpoints" && r.value.endpointSets.length, 1);
  });
  await t.step("Namespace", () => {
    const r = parseObject(
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "prod" } },
      "x#1",
    );
    assertEquals(r, {
      value: { kind: "Namespace", id: "Namespace prod", namespace: "prod" },
      errors: [],
    });
  });
  const bad: { name: string; obj: unknown; errors: string[]; warning?: boolean }[] = [
    {
      name: "scalar document",
      obj: "hello",
      errors: [
        'x#1: expected a Kubernetes object (a mapping with apiVersion and kind), got "hello"',
      ],
    },
    {
      name: "list document",
      obj: [1, 2],
      errors: ["x#1: expected a Kubernetes object (a mapping with apiVersion and kind), got [1,2]"],
    },
    {
      name: "kind missing",
      obj: { apiVersion: "v1", metadata: { name: "web" } },
      errors: ["x#1 kind: missing; expected Service, Endpoints, EndpointSlice or Namespace"],
    },
    {
      name: "kind not a string",
      obj: { apiVersion: "v1", kind: 3 },
      errors: ["x#1 kind: 3 is not a string"],
    },
    {
      name: "apiVersion missing",
      obj: { kind: "EndpointSlice", metadata: { name: "web" } },
      errors: ['x#1 apiVersion: missing; expected "discovery.k8s.io/v1" for kind EndpointSlice'],
    },
    {
      name: "other kinds are ignored with a warning",
      obj: { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" } },
      errors: [
        'x#1 kind: "Deployment" is not a kind svcgate reads (Service, Endpoints, EndpointSlice, Namespace); ignored',
      ],
      warning: true,
    },
    {
      name: "Namespace name invalid",
      obj: { apiVersion: "v1", kind: "Namespace", metadata: { name: "prod.eu" } },
      errors: [
        'x#1 metadata.name: "prod.eu" is not a valid Namespace name (a DNS-1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters)',
      ],
    },
  ];
  for (const c of bad) {
    await t.step(c.name, () => {
      const r = parseObject(c.obj, "x#1");
      assertEquals(r.value, undefined);
      assertEquals(r.errors.map(formatError), c.errors);
      assertEquals(r.errors.every(isWarning), c.warning ?? false);
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

Deno.test("rawObjectId and objectId identify objects even when invalid", () => {
  assertEquals(
    rawObjectId(svc({ ports: [{ port: 0 }] }, { namespace: "prod" })),
    "Service prod/web",
  );
  assertEquals(rawObjectId(slice()), "EndpointSlice default/web-1");
  assertEquals(rawObjectId({ kind: "Namespace", metadata: { name: "x" } }), "Namespace x");
  assertEquals(rawObjectId({ kind: "Service", metadata: {} }), undefined);
  assertEquals(rawObjectId({ kind: "Deployment", metadata: { name: "x" } }), undefined);
  assertEquals(rawObjectId("x"), undefined);
  assertEquals(objectId("Endpoints", "a", "b"), "Endpoints a/b");
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

Deno.test("an EndpointSlice port without a number is skipped with a warning", () => {
  const r = parseEndpointSlice(
    slice({ ports: [{ name: "all" }, { name: "http", port: 8080 }] }),
    "e.yaml#1",
  );
  assertEquals(r.errors.map(formatError), [
    "e.yaml#1 ports[0].port: missing; this port is ignored (svcgate needs a port number)",
  ]);
  assertEquals(r.errors.every(isWarning), true);
  assertEquals(r.value?.ports, [{ name: "http", protocol: "TCP", port: 8080 }]);
});

Deno.test("an Endpoints port without a number is an error", () => {
  const r = parseEndpoints(endpoints([{ ports: [{ name: "http" }] }]), "d.yaml#1");
  assertEquals(r.errors.map(formatError), [
    "d.yaml#1 subsets[0].ports[0].port: missing; a port number (1-65535) is required",
  ]);
  assertEquals(r.value, undefined);
});

Deno.test("an EndpointSlice may mix one unnamed port with named ones, as the API allows", () => {
  const r = parseEndpointSlice(
    slice({ ports: [{ port: 8080 }, { name: "metrics", port: 9100 }] }),
    "e.yaml#1",
  );
  assertEquals(r.errors, []);
  assertEquals(r.value?.ports.map((p) => `${p.name}:${p.port}`), [":8080", "metrics:9100"]);
});
