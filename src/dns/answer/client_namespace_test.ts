import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { clientAddress, ClientNamespaces, sockaddrAddress } from "./client_namespace.ts";
import { buildZone } from "../zone/zone_index.ts";
import { ModelStore } from "../../model/store.ts";
import {
  cidr,
  endpointSet,
  ep,
  FIXTURE_ZONE_OPTIONS,
  makeService,
} from "../../../tests/support/dns_fixture.ts";
import { ip } from "../../../tests/support/model_values.ts";

Deno.test("clientAddress: canonical text, v4-mapped IPv6 as IPv4, zone ids dropped", () => {
  assertEquals(
    ["198.18.0.11", "::ffff:198.18.0.11", "2001:DB8::0b", "fe80::1%eth0", "node"].map(
      clientAddress,
    ),
    ["198.18.0.11", "198.18.0.11", "2001:db8::b", "fe80::1", null],
  );
});

Deno.test("sockaddrAddress: Linux sockaddr_in and sockaddr_in6", () => {
  const v4 = new Uint8Array(28);
  v4.set([2, 0, 0, 53, 198, 18, 0, 11]);
  assertEquals(sockaddrAddress(v4, 0), "198.18.0.11");
  const v6 = new Uint8Array(28);
  v6.set([10, 0, 0, 53, 0, 0, 0, 0]);
  v6.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b], 8);
  assertEquals(sockaddrAddress(v6, 0), "2001:db8::b");
  v6.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 12], 8);
  assertEquals(sockaddrAddress(v6, 0), "198.18.0.12");
  assertEquals(sockaddrAddress(new Uint8Array(28), 0), null);
});

Deno.test("ClientNamespaces: node pods, then the longest --client-namespace, then endpoints", () => {
  const store = new ModelStore();
  store.setService(makeService({ namespace: "shop", name: "web", clusterIPs: [ip("198.19.0.1")] }));
  store.setEndpointSet(endpointSet("shop", "web", [], [ep("198.18.3.1"), ep("198.18.3.2")]));
  store.setService(makeService({ namespace: "shop", name: "api", clusterIPs: [ip("198.19.0.2")] }));
  store.setEndpointSet(endpointSet("shop", "api", [], [ep("198.18.3.1")]));
  store.setService(makeService({ namespace: "ops", name: "log", clusterIPs: [ip("198.19.0.3")] }));
  store.setEndpointSet(endpointSet("ops", "log", [], [ep("198.18.3.2")]));
  const zone = buildZone(store.commit().snapshot, FIXTURE_ZONE_OPTIONS);
  const clients = new ClientNamespaces({
    rules: [
      { cidr: cidr("198.18.0.0/16"), namespace: "wide" },
      { cidr: cidr("198.18.9.0/24"), namespace: "narrow" },
    ],
    fromEndpoints: true,
  });
  clients.setNodePods(new Map([["198.18.9.9", "pod-ns"]]));
  assertEquals(clients.clientNamespace("198.18.9.9", zone), "pod-ns", "the node's pod first");
  assertEquals(clients.clientNamespace("198.18.9.8", zone), "narrow", "the longest prefix");
  assertEquals(clients.clientNamespace("198.18.8.8", zone), "wide");
  const endpointsOnly = new ClientNamespaces({ fromEndpoints: true });
  assertEquals(endpointsOnly.clientNamespace("198.18.3.1", zone), "shop", "two services, one ns");
  assertEquals(endpointsOnly.clientNamespace("198.18.3.2", zone), undefined, "two namespaces");
  assertEquals(endpointsOnly.clientNamespace("198.18.3.3", zone), undefined);
  assertEquals(new ClientNamespaces().clientNamespace("198.18.3.1", zone), undefined);
});
