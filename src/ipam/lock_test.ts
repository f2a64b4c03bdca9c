import {
  deepStrictEqual as assertEquals,
  notDeepStrictEqual as assertNotEquals,
} from "node:assert/strict";
import { parseCidr } from "../model/ip.ts";
import type { Cidr } from "../model/ip.ts";
import { allocateVips } from "./allocator.ts";
import { parseVipLock, pinVips, renderVipLock, vipLockPath } from "./lock.ts";
import { EMPTY_IPAM_STATE, type IpamState } from "./state.ts";
import { testService } from "../../tests/support/test_service.ts";
import { ip } from "../../tests/support/model_values.ts";

const V4 = parseCidr("198.19.0.0/16") as Cidr;
const V6 = parseCidr("2001:db8:1::/112") as Cidr;
const T0 = 1_700_000_000_000;

const svc = testService;

Deno.test("vipLockPath: inside a directory, beside a file", () => {
  const cases: [string, boolean, string][] = [
    ["/etc/svcgate/manifests", true, "/etc/svcgate/manifests/svcgate-vips.lock"],
    ["/etc/svcgate/manifests/", true, "/etc/svcgate/manifests/svcgate-vips.lock"],
    ["/etc/svcgate/web.yaml", false, "/etc/svcgate/svcgate-vips.lock"],
    ["web.yaml", false, "svcgate-vips.lock"],
    ["deploy/examples", true, "deploy/examples/svcgate-vips.lock"],
    ["/web.yaml", false, "/svcgate-vips.lock"],
  ];
  for (const [path, isDir, expected] of cases) assertEquals(vipLockPath(path, isDir), expected);
});

Deno.test("pinVips: two nodes with different histories use the same VIPs once pinned", () => {
  const services = [
    svc("default/web", { ipFamilies: [4, 6] }),
    svc("default/api"),
    svc("default/db", { headless: true }),
    svc("default/fixed", { clusterIPs: [ip("198.19.0.10")] }),
  ];
  // Node 1 pins.
  const pinned = pinVips({ services, state: EMPTY_IPAM_STATE, cidrs: [V4, V6], now: T0 });
  assertEquals(pinned.allocation.errors, []);
  const web = pinned.allocation.services[0].clusterIPs;
  const api = pinned.allocation.services[1].clusterIPs;
  assertEquals(
    pinned.text,
    `{
  "version": 1,
  "services": {
    "default/api": ${JSON.stringify(api)},
    "default/fixed": ["198.19.0.10"],
    "default/web": ${JSON.stringify(web)}
  }
}
`,
  );
  const lock = parseVipLock(pinned.text, "/m/svcgate-vips.lock");
  if (typeof lock === "string") throw new Error(lock);
  assertEquals(renderVipLock(lock), pinned.text);

  // Node 2 once gave web's IPv4 to api and api's to web: the lock overrides its local history.
  const node2: IpamState = {
    version: 1,
    allocations: {
      "default/api": { ips: [web[0]] },
      "default/web": { ips: [api[0], web[1]] },
    },
    released: [],
  };
  const r = allocateVips(node2, services, { cidrs: [V4, V6], now: T0, pins: lock.services });
  assertEquals(r.errors, []);
  assertEquals(r.services.map((s) => s.clusterIPs), [web, api, [], ["198.19.0.10"]]);
});

Deno.test("pinVips: re-pinning keeps existing pins and entries of services that fail", () => {
  const previous = {
    version: 1 as const,
    services: { "default/web": [ip("198.19.0.20")], "default/gone": [ip("198.19.0.30")] },
  };
  const r = pinVips({
    services: [svc("default/web"), svc("default/bad", { clusterIPs: [ip("198.19.0.20")] })],
    state: EMPTY_IPAM_STATE,
    cidrs: [V4],
    now: T0,
    previous,
  });
  assertEquals(r.allocation.errors.map((e) => e.message), [
    `default/bad: clusterIP "198.19.0.20" is already allocated to default/web`,
  ]);
  // gone is no longer in the manifests: dropped; web keeps its pin.
  assertEquals(r.lock.services, { "default/web": ["198.19.0.20"] });
  assertNotEquals(r.allocation.state, EMPTY_IPAM_STATE);
});

Deno.test("parseVipLock: bad input names the file, the entry and the value", () => {
  const p = "/m/svcgate-vips.lock";
  const w = `Cannot read VIP lock file "${p}"`;
  const cases: [string, string][] = [
    [
      "{",
      `${w}: not valid JSON (Expected property name or '}' in JSON at position 1 (line 1 column 2))`,
    ],
    ["null", `${w}: the top level is not a JSON object`],
    ['{"version":"1","services":{}}', `${w}: version "1" is not supported (expected 1)`],
    ['{"version":1}', `${w}: "services" is not an object`],
    [
      '{"version":1,"services":{"web":[]}}',
      `${w}: services["web"]: "web" is not a namespace/name key`,
    ],
    [
      '{"version":1,"services":{"a/b":"198.19.0.1"}}',
      `${w}: services["a/b"] is not an array of IP addresses`,
    ],
    [
      '{"version":1,"services":{"a/b":["198.19.0"]}}',
      `${w}: services["a/b"][0]: "198.19.0" is not an IP address`,
    ],
    [
      '{"version":1,"services":{"a/b":["198.19.0.1"],"a/c":["198.19.0.1"]}}',
      `${w}: services["a/c"][0]: "198.19.0.1" is also pinned to a/b`,
    ],
  ];
  for (const [text, expected] of cases) assertEquals(parseVipLock(text, p), expected, text);
});
