import { ok as assert } from "node:assert/strict";
import { AllowList } from "./allow_list.ts";
import { cidr } from "../../../tests/support/dns_fixture.ts";

Deno.test("AllowList: text, sockaddr_in, sockaddr_in6 and v4-mapped addresses", () => {
  const allow = new AllowList([
    cidr("127.0.0.0/8"),
    cidr("198.18.0.0/16"),
    cidr("2001:db8::/33"),
    cidr("::1/128"),
  ]);
  assert(allow.allowsAddress("127.0.0.1"));
  assert(allow.allowsAddress("198.18.255.1"));
  assert(!allow.allowsAddress("198.19.0.1"));
  assert(allow.allowsAddress("2001:db8::1"));
  assert(allow.allowsAddress("2001:db8:7fff::1"));
  assert(!allow.allowsAddress("2001:db8:8000::1"));
  assert(allow.allowsAddress("::1"));
  assert(allow.allowsAddress("::ffff:198.18.0.9"));
  assert(!allow.allowsAddress("::ffff:198.19.0.9"));
  assert(!allow.allowsAddress("garbage"));
  const sin = new Uint8Array(16);
  sin[0] = 2;
  sin.set([198, 18, 3, 4], 4);
  assert(allow.allowsSockaddr(sin, 0));
  sin.set([8, 8, 8, 8], 4);
  assert(!allow.allowsSockaddr(sin, 0));
  const sin6 = new Uint8Array(28);
  sin6[0] = 10;
  sin6.set([0x20, 0x01, 0x0d, 0xb8], 8);
  assert(allow.allowsSockaddr(sin6, 0));
  assert(!new AllowList([]).allowsAddress("127.0.0.1"));
  assert(new AllowList([cidr("0.0.0.0/0")]).allowsAddress("203.0.113.1"));
});

Deno.test("AllowList.replace: the transports' list changes in place", () => {
  const allow = new AllowList([cidr("127.0.0.0/8")]);
  const sin = new Uint8Array(16);
  sin[0] = 2;
  sin.set([169, 254, 20, 10], 4);
  assert(!allow.allowsSockaddr(sin, 0));
  allow.replace([cidr("127.0.0.0/8"), cidr("169.254.20.10/32")]);
  assert(allow.allowsSockaddr(sin, 0));
  assert(allow.allowsAddress("127.0.0.1"));
  allow.replace([cidr("::1/128")]);
  assert(!allow.allowsSockaddr(sin, 0) && !allow.allowsAddress("127.0.0.1"));
  assert(allow.allowsAddress("::1"));
});
