import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { decodeMessage } from "./decode.ts";
import { encodeHeaderOnlyReply, encodeMessage } from "./encode.ts";
import { nameToLabels } from "./names.ts";
import { record } from "../../../tests/support/dns_fixture.ts";
import {
  formatRecord,
  type Message,
  queryMessage,
  type ResourceRecord,
  RRClass,
  RRType,
} from "./records.ts";

function message(over: Partial<Message> = {}): Message {
  const q = { name: "web.default.svc.cluster.local", type: RRType.A, class: RRClass.IN };
  return queryMessage([q], { id: 0x1234, qr: true, aa: true, ra: true, ...over });
}

Deno.test("wire: every record kind survives an encode/decode round trip", () => {
  const answers: ResourceRecord[] = [
    record("web.default.svc.cluster.local", RRType.A, { address: "198.19.0.10" }),
    record("web.default.svc.cluster.local", RRType.AAAA, { address: "2001:db8:ffff::10" }),
    record("x.cluster.local", RRType.CNAME, { target: "example.org" }),
    record("10.0.19.198.in-addr.arpa", RRType.PTR, { target: "web.default.svc.cluster.local" }),
    record("cluster.local", RRType.NS, { target: "ns.dns.cluster.local" }),
    record("_http._tcp.web.default.svc.cluster.local", RRType.SRV, {
      priority: 0,
      weight: 100,
      port: 80,
      target: "web.default.svc.cluster.local",
    }),
    record("dns-version.cluster.local", RRType.TXT, { texts: ["1.1.0", 'with "quote"', ""] }),
    record("cluster.local", RRType.SOA, {
      mname: "ns.dns.cluster.local",
      rname: "hostmaster.cluster.local",
      serial: 4294967295,
      refresh: 7200,
      retry: 1800,
      expire: 86400,
      minimum: 30,
    }),
    record("mx.example", RRType.MX, { preference: 10, exchange: "mail.example" }),
    record("raw.example", 65280, { raw: Uint8Array.from([1, 2, 3]) }),
  ];
  const msg = message({
    answers,
    edns: { udpSize: 1232, version: 0, dnssecOk: true, options: [] },
  });
  const bytes = encodeMessage(msg);
  const back = decodeMessage(bytes);
  assert(back.ok, back.ok ? "" : back.error);
  assertEquals(back.message.answers.map(formatRecord), answers.map(formatRecord));
  assertEquals(back.message.edns, { udpSize: 1232, version: 0, dnssecOk: true, options: [] });
  assertEquals(back.message.id, 0x1234);
  assertEquals(back.message.rd, true);
  assertEquals(answers.map(formatRecord), [
    "web.default.svc.cluster.local. 30 IN A 198.19.0.10",
    "web.default.svc.cluster.local. 30 IN AAAA 2001:db8:ffff::10",
    "x.cluster.local. 30 IN CNAME example.org.",
    "10.0.19.198.in-addr.arpa. 30 IN PTR web.default.svc.cluster.local.",
    "cluster.local. 30 IN NS ns.dns.cluster.local.",
    "_http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local.",
    'dns-version.cluster.local. 30 IN TXT "1.1.0" "with \\"quote\\"" ""',
    "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 4294967295 7200 1800 86400 30",
    "mx.example. 30 IN MX 10 mail.example.",
    "raw.example. 30 IN TYPE65280 \\# 3 010203",
  ]);
});

Deno.test("wire: names are compressed against the question", () => {
  const answers = [record("web.default.svc.cluster.local", RRType.A, { address: "198.19.0.10" })];
  const bytes = encodeMessage(message({ answers }));
  // header 12 + question (31 + 4) + answer (pointer 2 + 10 + 4)
  assertEquals(bytes.length, 12 + 35 + 16);
  assertEquals([bytes[47], bytes[48]], [0xc0, 12]);
});

Deno.test("wire: escaped labels survive a round trip", () => {
  const name = "a\\.b.c\\\\d.\\000x";
  const labels = nameToLabels(name);
  assert(Array.isArray(labels));
  assertEquals(labels.map((l) => [...l]), [[0x61, 0x2e, 0x62], [0x63, 0x5c, 0x64], [0, 0x78]]);
  const bytes = encodeMessage(message({ questions: [{ name, type: 1, class: 1 }] }));
  const back = decodeMessage(bytes);
  assert(back.ok);
  assertEquals(back.message.questions[0].name, name);
});

Deno.test("wire: bad names are refused with the name quoted", () => {
  assertEquals(nameToLabels("a..b"), 'Cannot encode name "a..b": it has an empty label');
  assertEquals(
    nameToLabels("x".repeat(64) + ".example"),
    `Cannot encode name "${"x".repeat(64)}.example": a label is longer than 63 bytes`,
  );
  const long = Array.from({ length: 60 }, () => "abcd").join(".");
  assertEquals(nameToLabels(long), `Cannot encode name "${long}": it is longer than 255 bytes`);
});

Deno.test("wire: a truncated answer keeps what fits in 512 bytes; to ANY it is the question only", () => {
  const answers: ResourceRecord[] = [];
  for (let i = 0; i < 100; i++) {
    answers.push(record("web.default.svc.cluster.local", RRType.A, { address: `198.18.0.${i}` }));
  }
  const authority = [
    record("cluster.local", RRType.NS, { target: "ns.dns.cluster.local" }),
  ];
  const edns = { udpSize: 1232, version: 0, dnssecOk: false, options: [] };
  const any = [{ name: "web.default.svc.cluster.local", type: RRType.ANY, class: RRClass.IN }];
  // 12 header + 35 question (+ 11 OPT), then 16 bytes per compressed A record.
  const cases = [
    // musl <= 1.2.3 never retries over TCP: it resolves with the 29 that fit.
    { name: "A, answers over 512", msg: message({ answers }), limit: 512, kept: 29 },
    // Kept to 512 bytes whatever the client's buffer, so the reply stays small.
    { name: "A, over 1232, EDNS", msg: message({ answers, edns }), limit: 1232, kept: 28 },
    {
      name: "A, answers and authority over 600",
      msg: message({ answers, authority, edns }),
      limit: 600,
      kept: 28,
    },
    {
      name: "A, authority alone over the limit",
      msg: message({ authority: answers.map((a) => ({ ...a, type: RRType.A })), edns }),
      limit: 700,
      kept: 0,
    },
    // As knotd: the amplification query gets a reply no larger than itself.
    { name: "ANY over 512", msg: message({ answers, questions: any }), limit: 512, kept: 0 },
    {
      name: "ANY over 1232, EDNS",
      msg: message({ answers, edns, questions: any }),
      limit: 1232,
      kept: 0,
    },
  ];
  for (const c of cases) {
    const bytes = encodeMessage(c.msg, c.limit);
    const back = decodeMessage(bytes);
    assert(back.ok, c.name);
    assertEquals(back.message.tc, true, c.name);
    assertEquals(back.message.answers.length, c.kept, c.name);
    assertEquals(back.message.answers, answers.slice(0, c.kept), c.name);
    assertEquals(back.message.authority.length, 0, c.name);
    assertEquals(back.message.additional.length, 0, c.name);
    assertEquals(back.message.edns?.udpSize, c.msg.edns?.udpSize, c.name);
    assertEquals(bytes.length, 12 + 35 + (c.msg.edns ? 11 : 0) + 16 * c.kept, c.name);
    assert(bytes.length <= 512, c.name);
  }
  const all = decodeMessage(encodeMessage(message({ answers })));
  assert(all.ok);
  assertEquals(all.message.tc, false);
  assertEquals(all.message.answers.length, 100);
});

Deno.test("wire: additional records that do not fit are dropped without TC", () => {
  const additional: ResourceRecord[] = [];
  for (let i = 0; i < 60; i++) {
    additional.push(record(`host${i}.example`, RRType.A, { address: `198.18.0.${i}` }));
  }
  const bytes = encodeMessage(message({ additional }), 512);
  const back = decodeMessage(bytes);
  assert(back.ok);
  assertEquals(back.message.tc, false);
  assert(back.message.additional.length < 60);
});

Deno.test("wire: header-only FORMERR echoes ID, opcode and RD only", () => {
  const bytes = encodeHeaderOnlyReply(
    {
      id: 0xbeef,
      qr: false,
      opcode: 0,
      rd: true,
      cd: false,
      qdcount: 9,
      ancount: 9,
      nscount: 0,
      arcount: 0,
    },
    1,
  );
  assertEquals([...bytes], [0xbe, 0xef, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
});

Deno.test("wire: an address of the wrong family is refused with the record and address quoted", () => {
  const bad = (type: number, address: string) => {
    try {
      encodeMessage(message({ answers: [record("web.example", type, { address })] }));
      return "encoded";
    } catch (e) {
      return (e as Error).message;
    }
  };
  assertEquals(
    bad(RRType.A, "2001:db8::1"),
    'Cannot encode A record "web.example": "2001:db8::1" is not IPv4',
  );
  assertEquals(
    bad(RRType.A, "198.18.0.256"),
    'Cannot encode A record "web.example": "198.18.0.256" is not IPv4',
  );
  assertEquals(
    bad(RRType.AAAA, "198.18.0.1"),
    'Cannot encode AAAA record "web.example": "198.18.0.1" is not IPv6',
  );
  assertEquals(bad(RRType.AAAA, "::ffff:198.18.0.1"), "encoded");
});
