import { deepStrictEqual as assertEquals, notStrictEqual, strictEqual } from "node:assert/strict";
import {
  type Backend,
  buildServiceEntry,
  publishedEndpoints,
  type ServiceEntry,
} from "./snapshot.ts";
import type { Endpoint, EndpointPort, EndpointSet, Service, ServicePort } from "./types.ts";
import { SERVICE_PROXY_NAME_LABEL } from "./types.ts";
import { testService } from "../../tests/support/test_service.ts";
import { ip } from "../../tests/support/model_values.ts";

function svc(ports: Partial<ServicePort>[], extra: Partial<Service> = {}): Service {
  return testService("default/web", {
    clusterIPs: [ip("198.19.0.10")],
    ports: ports.map((p) => ({
      name: "",
      protocol: "TCP",
      port: 80,
      targetPort: p.port ?? 80,
      ...p,
    })),
    ipFamilies: [4],
    ...extra,
  });
}

function ep(address: string, state: Partial<Endpoint> = {}): Endpoint {
  return { address: ip(address), ready: true, serving: true, terminating: false, ...state };
}

function set(id: string, ports: Partial<EndpointPort>[], endpoints: Endpoint[]): EndpointSet {
  return {
    namespace: "default",
    serviceName: "web",
    id,
    ports: ports.map((p) => ({ name: "", protocol: "TCP", port: 8080, ...p })),
    endpoints,
  };
}

function flags(b: Backend): string {
  return [
    b.ready ? "" : "not-ready",
    b.serving ? "" : "not-serving",
    b.terminating ? "terminating" : "",
  ]
    .filter(Boolean).join(",");
}

/** One line per service port: `80/TCP -> 198.18.0.1:8080 198.18.0.2:8080(not-ready)`. */
function lines(entry: ServiceEntry): string[] {
  return entry.ports.map((p) =>
    [
      `${p.servicePort.port}/${p.servicePort.protocol} ->`,
      ...p.backends.map((b) => `${b.address}:${b.port}${flags(b) ? `(${flags(b)})` : ""}`),
    ].join(" ")
  );
}

Deno.test("buildServiceEntry: port resolution and merging", async (t) => {
  const cases: { name: string; service: Service; sets: EndpointSet[]; want: string[] }[] = [
    {
      name: "unnamed port, unnamed endpoint port",
      service: svc([{ port: 80 }]),
      sets: [set("s1", [{ port: 8080 }], [ep("198.18.0.1"), ep("198.18.0.2")])],
      want: ["80/TCP -> 198.18.0.1:8080 198.18.0.2:8080"],
    },
    {
      name: "named targetPort resolved through the endpoint port named like the service port",
      service: svc([{ name: "http", port: 80, targetPort: "web" }]),
      sets: [set("s1", [{ name: "http", port: 8080 }], [ep("198.18.0.1")])],
      want: ["80/TCP -> 198.18.0.1:8080"],
    },
    {
      name: "named targetPort resolved through the endpoint port named like the targetPort",
      service: svc([{ name: "http", port: 80, targetPort: "web" }]),
      sets: [set("s1", [{ name: "web", port: 9090 }], [ep("198.18.0.1")])],
      want: ["80/TCP -> 198.18.0.1:9090"],
    },
    {
      name: "named targetPort that no endpoint port carries: no backends",
      service: svc([{ name: "http", port: 80, targetPort: "web" }]),
      sets: [set("s1", [{ name: "other", port: 9090 }], [ep("198.18.0.1")])],
      want: ["80/TCP ->"],
    },
    {
      name: "named targetPort with portless endpoints: no backends",
      service: svc([{ name: "http", port: 80, targetPort: "web" }]),
      sets: [set("s1", [], [ep("198.18.0.1")])],
      want: ["80/TCP ->"],
    },
    {
      name: "numeric targetPort applies to portless endpoints (hand-written Endpoints)",
      service: svc([{ port: 80, targetPort: 8081 }]),
      sets: [set("endpoints/web#0", [], [ep("198.18.0.1")])],
      want: ["80/TCP -> 198.18.0.1:8081"],
    },
    {
      name: "endpoint ports override the numeric targetPort, as in kube-proxy",
      service: svc([{ port: 80, targetPort: 8081 }]),
      sets: [set("s1", [{ port: 9000 }], [ep("198.18.0.1")])],
      want: ["80/TCP -> 198.18.0.1:9000"],
    },
    {
      name: "protocol must match",
      service: svc([{ name: "dns", port: 53, protocol: "UDP" }]),
      sets: [set("s1", [{ name: "dns", port: 53, protocol: "TCP" }], [ep("198.18.0.1")])],
      want: ["53/UDP ->"],
    },
    {
      name: "two ports, each from its named endpoint port",
      service: svc([
        { name: "http", port: 80, targetPort: 8080 },
        { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
      ]),
      sets: [
        set("s1", [{ name: "http", port: 8080 }, { name: "dns", port: 5353, protocol: "UDP" }], [
          ep("198.18.0.1"),
        ]),
      ],
      want: ["80/TCP -> 198.18.0.1:8080", "53/UDP -> 198.18.0.1:5353"],
    },
    {
      name: "several slices merged, sorted by address, duplicates removed (lowest slice id wins)",
      service: svc([{ port: 80 }]),
      sets: [
        set("s2", [{ port: 8080 }], [ep("198.18.0.3"), ep("198.18.0.1", { ready: false })]),
        set("s1", [{ port: 8080 }], [ep("198.18.0.2"), ep("198.18.0.1")]),
      ],
      want: ["80/TCP -> 198.18.0.1:8080 198.18.0.2:8080 198.18.0.3:8080"],
    },
    {
      name: "one address on two ports in different slices stays twice",
      service: svc([{ port: 80 }]),
      sets: [
        set("s1", [{ port: 8080 }], [ep("198.18.0.1")]),
        set("s2", [{ port: 8081 }], [ep("198.18.0.1")]),
      ],
      want: ["80/TCP -> 198.18.0.1:8080 198.18.0.1:8081"],
    },
    {
      name: "dual-stack: IPv4 and IPv6 slices, addresses canonicalized",
      service: svc([{ port: 80 }], {
        clusterIPs: [ip("198.19.0.10"), ip("2001:db8::10")],
        ipFamilies: [4, 6],
      }),
      sets: [
        set("v4", [{ port: 8080 }], [ep("198.18.0.1")]),
        set("v6", [{ port: 8080 }], [ep("2001:DB8::0:a1")]),
      ],
      want: ["80/TCP -> 198.18.0.1:8080 2001:db8::a1:8080"],
    },
    {
      name: "readiness flags are carried to backends",
      service: svc([{ port: 80 }]),
      sets: [
        set("s1", [{ port: 8080 }], [
          ep("198.18.0.1", { ready: false, serving: true, terminating: true }),
          ep("198.18.0.2", { ready: false, serving: false }),
        ]),
      ],
      want: [
        "80/TCP -> 198.18.0.1:8080(not-ready,terminating) 198.18.0.2:8080(not-ready,not-serving)",
      ],
    },
    {
      name: "no sets: ports without backends",
      service: svc([{ port: 80 }]),
      sets: [],
      want: ["80/TCP ->"],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const entry = buildServiceEntry(c.service, c.sets);
      assertEquals(lines(entry), c.want);
      strictEqual(entry.key, "default/web");
    });
  }
});

Deno.test("buildServiceEntry: endpoints for DNS, one per address, first slice wins", () => {
  const entry = buildServiceEntry(svc([], { headless: true, clusterIPs: [] }), [
    set("b", [], [ep("198.18.0.2", { hostname: "web-2" }), ep("198.18.0.1", { hostname: "late" })]),
    set("a", [], [
      ep("198.18.0.1", { hostname: "web-1", ready: false }),
      ep("2001:db8:0::1", { hostname: "web-6" }),
    ]),
  ]);
  assertEquals(entry.endpoints.map((e) => `${e.address} ${e.hostname} ${e.ready}`), [
    "198.18.0.1 web-1 false",
    "198.18.0.2 web-2 true",
    "2001:db8::1 web-6 true",
  ]);
  assertEquals(publishedEndpoints(entry).map((e) => e.address), ["198.18.0.2", "2001:db8::1"]);
  const all = buildServiceEntry(
    svc([], { headless: true, clusterIPs: [], publishNotReadyAddresses: true }),
    [set("a", [], [ep("198.18.0.1", { ready: false })])],
  );
  assertEquals(publishedEndpoints(all).map((e) => e.address), ["198.18.0.1"]);
});

Deno.test("buildServiceEntry: ownership label and fingerprints", () => {
  strictEqual(buildServiceEntry(svc([{ port: 80 }]), []).ownedByOtherProxy, false);
  strictEqual(
    buildServiceEntry(svc([{ port: 80 }], { labels: { [SERVICE_PROXY_NAME_LABEL]: "other" } }), [])
      .ownedByOtherProxy,
    true,
  );
  const sets = [set("s1", [{ port: 8080 }], [ep("198.18.0.1")])];
  const a = buildServiceEntry(svc([{ port: 80 }]), sets);
  // Equal content in new objects and another set order: the same fingerprint.
  const b = buildServiceEntry(svc([{ port: 80 }]), [
    set("s2", [{ port: 8080 }], []),
    set("s1", [{ port: 8080 }], [ep("198.18.0.1")]),
  ]);
  const c = buildServiceEntry(svc([{ port: 80 }]), [
    set("s1", [{ port: 8080 }], [ep("198.18.0.1")]),
    set("s2", [{ port: 8080 }], []),
  ]);
  strictEqual(b.fingerprint, c.fingerprint);
  notStrictEqual(a.fingerprint, buildServiceEntry(svc([{ port: 81 }]), sets).fingerprint);
  notStrictEqual(
    a.fingerprint,
    buildServiceEntry(svc([{ port: 80 }]), [
      set("s1", [{ port: 8080 }], [ep("198.18.0.1", { ready: false })]),
    ])
      .fingerprint,
  );
  strictEqual(a.fingerprint, buildServiceEntry(svc([{ port: 80 }]), [...sets]).fingerprint);
});
