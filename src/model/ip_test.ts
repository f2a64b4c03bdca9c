import { deepStrictEqual as assertEquals, strictEqual } from "node:assert/strict";
import {
  bigIntToIp,
  canonicalIp,
  type Cidr,
  cidrContains,
  cidrSize,
  formatIp,
  ipFamilyOf,
  ipToBigInt,
  parseCidr,
  parseIp,
  parseReverseName,
  reverseName,
} from "./ip.ts";
import { ip } from "../../tests/support/model_values.ts";

Deno.test("canonicalIp: valid addresses and their canonical text", async (t) => {
  const cases: [string, string][] = [
    ["198.19.0.1", "198.19.0.1"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["2001:db8::1", "2001:db8::1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:0db8:0000::0001", "2001:db8::1"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    // RFC 5952: the longest run of zeros is compressed; the first one on a tie.
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    // A single zero group is not compressed.
    ["2001:db8:1:1:1:1:0:1", "2001:db8:1:1:1:1:0:1"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::ffff:198.18.0.1", "::ffff:c612:1"],
    ["::198.18.0.1", "::c612:1"],
    ["2001:db8::a:B:c", "2001:db8::a:b:c"],
  ];
  for (const [text, want] of cases) {
    await t.step(text, () => {
      strictEqual(canonicalIp(text), want);
      strictEqual(canonicalIp(want), want, "canonical text is a fixed point");
    });
  }
});

Deno.test("parseIp: text that is not an address gives null", async (t) => {
  const bad = [
    "",
    "198.19.0",
    "198.19.0.1.2",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.-4",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4:80",
    "2001:db8::1::1",
    "2001:db8:::1",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    ":1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:",
    "fe80::1%eth0",
    "12345::",
    "g::1",
    "::ffff:1.2.3",
    "::ffff:1.2.3.4.5",
    "1.2.3.4::",
    "localhost",
  ];
  for (const text of bad) {
    await t.step(JSON.stringify(text), () => {
      strictEqual(parseIp(text), null);
      strictEqual(canonicalIp(text), null);
    });
  }
});

Deno.test("ipFamilyOf, ipToBigInt and bigIntToIp", () => {
  strictEqual(ipFamilyOf(ip("198.19.0.1")), 4);
  strictEqual(ipFamilyOf(ip("2001:db8::1")), 6);
  strictEqual(ipToBigInt(parseIp("198.19.0.1")!), 0xc6130001n);
  strictEqual(ipToBigInt(parseIp("::1")!), 1n);
  strictEqual(formatIp(bigIntToIp(0xc6130001n, 4)), "198.19.0.1");
  strictEqual(formatIp(bigIntToIp((0x20010db8n << 96n) | 0xan, 6)), "2001:db8::a");
  const max6 = (1n << 128n) - 1n;
  strictEqual(formatIp(bigIntToIp(max6, 6)), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  strictEqual(ipToBigInt(bigIntToIp(max6, 6)), max6);
});

Deno.test("parseCidr: valid CIDRs, canonical text and host bits", async (t) => {
  const cases: [string, boolean, string, bigint][] = [
    ["198.19.0.0/16", true, "198.19.0.0/16", 65536n],
    ["198.19.7.1/16", false, "198.19.0.0/16", 65536n],
    ["198.19.0.5/32", true, "198.19.0.5/32", 1n],
    ["0.0.0.0/0", true, "0.0.0.0/0", 1n << 32n],
    ["2001:DB8::/32", true, "2001:db8::/32", 1n << 96n],
    ["2001:db8::1/64", false, "2001:db8::/64", 1n << 64n],
    ["::/0", true, "::/0", 1n << 128n],
    ["2001:db8::1/128", true, "2001:db8::1/128", 1n],
  ];
  for (const [text, strict, want, size] of cases) {
    await t.step(`${text} strict=${strict}`, () => {
      const c = parseCidr(text, strict);
      strictEqual(typeof c, "object");
      strictEqual((c as Cidr).text, want);
      strictEqual(cidrSize(c as Cidr), size);
    });
  }
});

Deno.test("parseCidr: bad input gives the exact error", async (t) => {
  const cases: [string, boolean, string][] = [
    ["198.19.0.0", false, '"198.19.0.0" is not a CIDR: missing "/prefix"'],
    ["", false, '"" is not a CIDR: missing "/prefix"'],
    ["198.19.0/16", false, '"198.19.0/16" is not a CIDR: address is invalid'],
    ["/16", false, '"/16" is not a CIDR: address is invalid'],
    ["198.19.0.0 /16", false, '"198.19.0.0 /16" is not a CIDR: address is invalid'],
    ["fe80::1%eth0/64", false, '"fe80::1%eth0/64" is not a CIDR: address is invalid'],
    ["198.19.0.256/24", false, '"198.19.0.256/24" is not a CIDR: address is invalid'],
    ["198.19.0.0/33", false, '"198.19.0.0/33" is not a CIDR: prefix is invalid'],
    ["198.19.0.0/", false, '"198.19.0.0/" is not a CIDR: prefix is invalid'],
    ["198.19.0.0/-1", false, '"198.19.0.0/-1" is not a CIDR: prefix is invalid'],
    ["198.19.0.0/1.5", false, '"198.19.0.0/1.5" is not a CIDR: prefix is invalid'],
    ["198.19.0.0/abc", false, '"198.19.0.0/abc" is not a CIDR: prefix is invalid'],
    ["198.19.0.0/16/8", false, '"198.19.0.0/16/8" is not a CIDR: prefix is invalid'],
    ["198.19.0.0/ 16", false, '"198.19.0.0/ 16" is not a CIDR: prefix is invalid'],
    ["2001:db8::/129", false, '"2001:db8::/129" is not a CIDR: prefix is invalid'],
    ["2001:db8::/1000", false, '"2001:db8::/1000" is not a CIDR: prefix is invalid'],
    ["198.19.0.1/16", true, '"198.19.0.1/16" is not a CIDR: host bits are set'],
    ["2001:db8::1/64", true, '"2001:db8::1/64" is not a CIDR: host bits are set'],
  ];
  for (const [text, strict, want] of cases) {
    await t.step(`${JSON.stringify(text)} strict=${strict}`, () => {
      strictEqual(parseCidr(text, strict), want);
    });
  }
});

Deno.test("cidrContains", async (t) => {
  const cases: [string, string, boolean][] = [
    ["198.19.0.0/16", "198.19.0.0", true],
    ["198.19.0.0/16", "198.19.255.255", true],
    ["198.19.0.0/16", "198.20.0.0", false],
    ["198.19.0.0/16", "198.18.255.255", false],
    ["198.19.0.0/16", "2001:db8::1", false],
    ["198.19.0.0/16", "not-an-ip", false],
    ["0.0.0.0/0", "198.18.0.1", true],
    ["198.19.0.5/32", "198.19.0.5", true],
    ["198.19.0.5/32", "198.19.0.6", false],
    ["2001:db8::/32", "2001:db8:ffff::1", true],
    ["2001:db8::/32", "2001:db9::", false],
    ["::/0", "2001:db8::1", true],
    ["::/0", "198.19.0.1", false],
  ];
  for (const [cidr, ip, want] of cases) {
    await t.step(`${cidr} ∋ ${ip}`, () => {
      const c = parseCidr(cidr) as Cidr;
      strictEqual(cidrContains(c, ip), want);
      const parsed = parseIp(ip);
      if (parsed) strictEqual(cidrContains(c, parsed), want);
    });
  }
});

Deno.test("reverseName and parseReverseName", async (t) => {
  const cases: [string, string][] = [
    ["198.19.0.10", "10.0.19.198.in-addr.arpa"],
    ["0.0.0.0", "0.0.0.0.in-addr.arpa"],
    [
      "2001:db8::1",
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    ],
    [
      "2001:db8::abcd:ef01",
      "1.0.f.e.d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    ],
  ];
  for (const [ip, name] of cases) {
    await t.step(ip, () => {
      strictEqual(reverseName(parseIp(ip)!), name);
      strictEqual(formatIp(parseReverseName(name)!), ip);
      strictEqual(formatIp(parseReverseName(name.toUpperCase())!), ip);
    });
  }
  const bad = [
    "0.19.198.in-addr.arpa",
    "1.0.0.19.198.in-addr.arpa",
    "256.0.19.198.in-addr.arpa",
    "01.0.19.198.in-addr.arpa",
    "in-addr.arpa",
    "x.in-addr.arpa",
    "1.0.0.ip6.arpa",
    "10.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    "g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    "10.0.19.198.in-addr.arpa.example",
    "web.default.svc.cluster.local",
  ];
  for (const name of bad) {
    await t.step(`not a reverse name: ${name}`, () => strictEqual(parseReverseName(name), null));
  }
});

Deno.test("formatIp round-trips every address it parses", () => {
  const samples = ["198.18.0.1", "2001:db8::", "2001:db8:0:1::", "::ffff:0:0", "1:0:0:2::3"];
  for (const s of samples) {
    const ip = parseIp(s)!;
    assertEquals(parseIp(formatIp(ip)), ip);
  }
});
