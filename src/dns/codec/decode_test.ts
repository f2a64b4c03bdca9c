import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { decodeMessage, MAX_POINTERS_PER_NAME, newQueryScan, scanQuery } from "./decode.ts";
import { flatRecordsQuery, pointerChainQuery } from "../../../tests/support/dns_attack.ts";

/** Builds a query packet by hand. */
function packet(parts: number[][]): Uint8Array {
  return Uint8Array.from(parts.flat());
}
const HEADER_1Q = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
const QNAME = [3, 0x77, 0x65, 0x62, 5, 0x6c, 0x6f, 0x63, 0x61, 0x6c, 0]; // web.local
const A_IN = [0, 1, 0, 1];

interface BadCase {
  name: string;
  bytes: Uint8Array;
  error: RegExp;
  header: boolean;
  /** The work limit named in the result, when the message is refused for its cost. */
  limit?: "compression_pointers" | "parse_budget";
}

const Q = "web.default.svc.cluster.local";

const BAD: BadCase[] = [
  {
    name: "empty",
    bytes: new Uint8Array(0),
    error: /shorter than a 12-byte header/,
    header: false,
  },
  {
    name: "11 bytes",
    bytes: new Uint8Array(11),
    error: /shorter than a 12-byte header/,
    header: false,
  },
  {
    name: "counts larger than the packet",
    bytes: packet([[0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]]),
    error: /header counts .* need at least/,
    header: true,
  },
  {
    name: "pointer to itself",
    bytes: packet([HEADER_1Q, [0xc0, 12], A_IN]),
    error: /does not point backwards \(loop\)/,
    header: true,
  },
  {
    name: "forward pointer",
    bytes: packet([HEADER_1Q, [0xc0, 20], A_IN, [0, 0]]),
    error: /does not point backwards/,
    header: true,
  },
  {
    name: "two pointers pointing at each other",
    bytes: packet([[0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0], QNAME, A_IN, [0xc0, 29, 0xc0, 27], [
      0,
      1,
      0,
      1,
      0,
      0,
      0,
      0,
      0,
      0,
    ]]),
    error: /pointer to 29 does not point backwards/,
    header: true,
  },
  {
    name: "extended label type",
    bytes: packet([HEADER_1Q, [0x41, 0], A_IN]),
    error: /label type 0x40 is unknown/,
    header: true,
  },
  {
    name: "label past the end",
    bytes: packet([HEADER_1Q, [20, 0x61, 0x62]]),
    error: /(past the end|need at least)/,
    header: true,
  },
  {
    name: "question without type",
    bytes: packet([HEADER_1Q, QNAME, [0]]),
    error: /question 1 type at offset \d+: needs 2 bytes/,
    header: true,
  },
  {
    name: "trailing garbage",
    bytes: packet([HEADER_1Q, QNAME, A_IN, [1, 2, 3]]),
    error: /3 trailing bytes/,
    header: true,
  },
  {
    name: "two OPT records",
    bytes: packet([
      [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 2],
      QNAME,
      A_IN,
      [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0],
      [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0],
    ]),
    error: /more than one OPT record/,
    header: true,
  },
  {
    name: "OPT with a non-root owner",
    bytes: packet([[0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1], QNAME, A_IN, [
      0xc0,
      12,
      0,
      41,
      4,
      0xd0,
      0,
      0,
      0,
      0,
      0,
      0,
    ]]),
    error: /OPT owner is "web.local", not the root/,
    header: true,
  },
  {
    name: "A record with 5 data bytes",
    bytes: packet([
      [0, 1, 0x81, 0, 0, 1, 0, 1, 0, 0, 0, 0],
      QNAME,
      A_IN,
      [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 5, 1, 2, 3, 4, 5],
    ]),
    error: /A data is 5 bytes, not 4/,
    header: true,
  },
  {
    name: "name longer than 255 bytes through pointers",
    bytes: (() => {
      // 5 labels of 63 bytes, written once, each later name points to the previous one.
      const parts: number[] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
      for (let i = 0; i < 5; i++) parts.push(63, ...new Array(63).fill(0x61));
      parts.push(0, 0, 1, 0, 1);
      return Uint8Array.from(parts);
    })(),
    error: /longer than 255 bytes/,
    header: true,
  },
  {
    // The owner's pointer plus a chain of 126: one more than miekg/dns allows.
    name: "a name through 127 compression pointers",
    bytes: pointerChainQuery({ question: Q, chain: MAX_POINTERS_PER_NAME, size: 330 }),
    error: /answer record 2 name at offset \d+: name follows more than 126 compression pointers/,
    header: true,
    limit: "compression_pointers",
  },
  {
    name: "the issue's probe: owners walking 8,000-pointer chains in 64 KB",
    bytes: pointerChainQuery({ question: Q, chain: 8000 }),
    error: /more than 126 compression pointers/,
    header: true,
    limit: "compression_pointers",
  },
  {
    // 120 pointers per owner is legal for one name, not for 3,000 of them in one message.
    name: "64 KB of owners walking 120-pointer chains",
    bytes: pointerChainQuery({ question: Q, chain: 120 }),
    error: /costs more than its parse budget of 131062 label and pointer steps/,
    header: true,
    limit: "parse_budget",
  },
];

for (const c of BAD) {
  Deno.test(`wire: decode rejects ${c.name}`, () => {
    // The same, whether the records are kept or only checked.
    for (const records of [true, false]) {
      const r = decodeMessage(c.bytes, { records });
      assert(!r.ok);
      if (r.ok) return;
      assert(c.error.test(r.error), `error "${r.error}" does not match ${c.error}`);
      assertEquals(r.header !== undefined, c.header);
      assertEquals(r.limit, c.limit);
    }
  });
}

Deno.test("wire: decode without records keeps the header, questions and OPT only", () => {
  const query = flatRecordsQuery({ question: Q, size: 2000 });
  // Append an OPT record (4096, DO) to the additional section.
  const withOpt = new Uint8Array([...query, 0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0]);
  withOpt[11] = 1;
  const full = decodeMessage(withOpt);
  const slim = decodeMessage(withOpt, { records: false });
  assert(full.ok && slim.ok);
  assertEquals(full.message.answers.length, 21);
  assertEquals(slim.message, { ...full.message, answers: [], authority: [], additional: [] });
  assertEquals(slim.message.edns, { udpSize: 4096, version: 0, dnssecOk: true, options: [] });
});

Deno.test("wire: decode reads what stays within the work limits", () => {
  const cases: { name: string; bytes: Uint8Array; answers: number }[] = [
    {
      // The owner's pointer plus a chain of 125: exactly miekg/dns's 126.
      name: "a name through 126 compression pointers",
      bytes: pointerChainQuery({ question: Q, chain: MAX_POINTERS_PER_NAME - 1, size: 330 }),
      answers: 2,
    },
    {
      // 4,000 owners, each a pointer to a pointer to the question name: 7 steps per 16 bytes.
      name: "64 KB of ordinary compression",
      bytes: pointerChainQuery({ question: Q, chain: 1 }),
      answers: 4093,
    },
    { name: "64 KB of flat records", bytes: flatRecordsQuery({ question: Q }), answers: 720 },
  ];
  for (const c of cases) {
    const r = decodeMessage(c.bytes);
    assert(r.ok, `${c.name}: ${r.ok ? "" : r.error}`);
    assertEquals(r.message.answers.length, c.answers, c.name);
    assertEquals(r.message.answers[c.answers - 1].name.length > 0, true, c.name);
  }
});

Deno.test("wire: scanQuery accepts the common shapes and declines the rest", () => {
  const scan = newQueryScan();
  const plain = packet([HEADER_1Q, QNAME, A_IN]);
  assert(scanQuery(plain, plain.length, scan));
  assertEquals(scan, {
    qnameEnd: 23,
    qtype: 1,
    qclass: 1,
    hasEdns: false,
    ednsSize: 0,
    dnssecOk: false,
  });
  const edns = packet([[0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1], QNAME, A_IN, [
    0,
    0,
    41,
    0x10,
    0,
    0,
    0,
    0x80,
    0,
    0,
    8,
    0,
    10,
    0,
    4,
    1,
    2,
    3,
    4,
  ]]);
  assert(scanQuery(edns, edns.length, scan));
  assertEquals(scan, {
    qnameEnd: 23,
    qtype: 1,
    qclass: 1,
    hasEdns: true,
    ednsSize: 4096,
    dnssecOk: true,
  });
  const declined: [string, Uint8Array][] = [
    ["compressed question", packet([HEADER_1Q, [0xc0, 12], A_IN])],
    ["two questions", packet([[0, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0], QNAME, A_IN, QNAME, A_IN])],
    ["a response", packet([[0, 1, 0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0], QNAME, A_IN])],
    ["opcode 2", packet([[0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0, 0, 0], QNAME, A_IN])],
    ["trailing byte", packet([HEADER_1Q, QNAME, A_IN, [0]])],
    [
      "EDNS version 1",
      packet([[0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1], QNAME, A_IN, [
        0,
        0,
        41,
        4,
        0xd0,
        0,
        1,
        0,
        0,
        0,
        0,
      ]]),
    ],
    [
      "OPT option overrun",
      packet([[0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1], QNAME, A_IN, [
        0,
        0,
        41,
        4,
        0xd0,
        0,
        0,
        0,
        0,
        0,
        4,
        0,
        10,
        0,
        9,
      ]]),
    ],
    ["truncated", packet([HEADER_1Q, QNAME, [0, 1]])],
  ];
  for (const [what, bytes] of declined) {
    assertEquals(scanQuery(bytes, bytes.length, scan), false, what);
  }
});
