import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  adoptLiveAllocations,
  EMPTY_IPAM_STATE,
  type IpamState,
  parseIpamState,
  renderIpamState,
} from "./state.ts";
import { ip } from "../../tests/support/model_values.ts";

Deno.test("renderIpamState: stable text, sorted keys, parses back to the same state", () => {
  const state: IpamState = {
    version: 1,
    allocations: {
      "default/web": { ips: [ip("198.19.0.20"), ip("2001:db8:1::14")] },
      "default/api": { ips: [ip("198.19.0.21")] },
    },
    released: [{ ip: ip("198.19.0.9"), key: "default/old", at: 1700000000000 }],
  };
  const text = renderIpamState(state);
  assertEquals(
    text,
    `{
  "version": 1,
  "allocations": {
    "default/api": {"ips":["198.19.0.21"]},
    "default/web": {"ips":["198.19.0.20","2001:db8:1::14"]}
  },
  "released": [
    {"ip":"198.19.0.9","key":"default/old","at":1700000000000}
  ]
}
`,
  );
  const parsed = parseIpamState(text);
  assertEquals(parsed, {
    version: 1,
    allocations: {
      "default/api": { ips: ["198.19.0.21"] },
      "default/web": { ips: ["198.19.0.20", "2001:db8:1::14"] },
    },
    released: [{ ip: "198.19.0.9", key: "default/old", at: 1700000000000 }],
  });
  assertEquals(renderIpamState(parsed as IpamState), text);
  assertEquals(parseIpamState(renderIpamState(EMPTY_IPAM_STATE)), EMPTY_IPAM_STATE);
});

Deno.test("parseIpamState: canonicalises addresses", () => {
  const s = parseIpamState(
    '{"version":1,"allocations":{"a/b":{"ips":["2001:DB8:1:0:0:0:0:5"]}},"released":[]}',
  ) as IpamState;
  assertEquals(s.allocations["a/b"].ips, ["2001:db8:1::5"]);
});

Deno.test("parseIpamState: bad input says what is wrong and where", () => {
  const ok = (allocations: string, released = "[]") =>
    `{"version":1,"allocations":${allocations},"released":${released}}`;
  const cases: [string, string][] = [
    ["", "not valid JSON (Unexpected end of JSON input)"],
    ["[1]", "the top level is not a JSON object"],
    ['{"version":2,"allocations":{},"released":[]}', "version 2 is not supported (expected 1)"],
    ['{"allocations":{},"released":[]}', "version null is not supported (expected 1)"],
    ['{"version":1,"allocations":[],"released":[]}', `"allocations" is not an object`],
    [ok('{"web":{"ips":[]}}'), `allocations["web"]: "web" is not a namespace/name key`],
    [ok('{"a/b":{"ips":"198.19.0.1"}}'), `allocations["a/b"].ips is not an array`],
    [
      ok('{"a/b":{"ips":["198.19.0.256"]}}'),
      `allocations["a/b"].ips[0]: "198.19.0.256" is not an IP address`,
    ],
    [ok('{"a/b":{"ips":[7]}}'), `allocations["a/b"].ips[0]: 7 is not an IP address`],
    [
      ok('{"a/b":{"ips":["198.19.0.1","198.19.0.2"]}}'),
      `allocations["a/b"].ips[1]: "198.19.0.2" is a second IPv4 address`,
    ],
    [
      ok('{"a/b":{"ips":["198.19.0.1"]},"a/c":{"ips":["198.19.0.1"]}}'),
      `allocations["a/c"].ips[0]: "198.19.0.1" is also allocated to a/b`,
    ],
    ['{"version":1,"allocations":{},"released":{}}', `"released" is not an array`],
    [ok("{}", "[3]"), "released[0] is not an object"],
    [ok("{}", '[{"ip":"x","key":"a/b","at":1}]'), `released[0].ip: "x" is not an IP address`],
    [ok("{}", '[{"ip":"198.19.0.1","at":1}]'), "released[0].key: null is not a namespace/name key"],
    [
      ok("{}", '[{"ip":"198.19.0.1","key":"a/b","at":"now"}]'),
      `released[0].at: "now" is not a time in milliseconds`,
    ],
    [
      ok("{}", '[{"ip":"198.19.0.1","key":"a/b","at":-5}]'),
      "released[0].at: -5 is not a time in milliseconds",
    ],
  ];
  for (const [text, expected] of cases) assertEquals(parseIpamState(text), expected, text);
});

Deno.test("adoptLiveAllocations: the kernel's VIPs win; other keys and releases lose them", () => {
  const state: IpamState = {
    version: 1,
    allocations: {
      "default/web": { ips: [ip("198.19.0.20"), ip("2001:db8:1::14")] },
      "default/api": { ips: [ip("198.19.0.30")] },
      "default/db": { ips: [ip("198.19.0.40")] },
    },
    released: [
      { ip: ip("198.19.0.50"), key: "default/old", at: 1 },
      { ip: ip("198.19.0.60"), key: "default/gone", at: 2 },
    ],
  };
  const r = adoptLiveAllocations(state, {
    // web's IPv4 differs in the kernel: the kernel wins, its IPv6 (not live) stays.
    "default/web": ["198.19.0.21"],
    // new key holding db's address: db loses it.
    "default/cache": ["198.19.0.40"],
    // a released address is live again.
    "default/old": ["198.19.0.50"],
    "default/api": ["198.19.0.30"],
  });
  assertEquals(r.state, {
    version: 1,
    allocations: {
      "default/api": { ips: ["198.19.0.30"] },
      "default/cache": { ips: ["198.19.0.40"] },
      "default/old": { ips: ["198.19.0.50"] },
      "default/web": { ips: ["2001:db8:1::14", "198.19.0.21"] },
    },
    released: [{ ip: "198.19.0.60", key: "default/gone", at: 2 }],
  });
  assertEquals(r.adopted, ["default/cache", "default/old", "default/web"]);
  assertEquals(r.problems, []);
});

Deno.test("adoptLiveAllocations: unusable live entries are reported, not used", () => {
  const r = adoptLiveAllocations(EMPTY_IPAM_STATE, {
    "web": ["198.19.0.1"],
    "default/a": ["bad", "198.19.0.2", "198.19.0.3"],
    "default/b": ["198.19.0.2"],
  });
  assertEquals(r.problems, [
    `live VIP "bad" of default/a is not an IP address`,
    `live VIP "198.19.0.3" of default/a is a second one of its family`,
    `live VIP "198.19.0.2" of default/b is also live for default/a`,
    `live service key "web" is not a namespace/name key`,
  ]);
  assertEquals(r.state.allocations, { "default/a": { ips: ["198.19.0.2"] } });
});
