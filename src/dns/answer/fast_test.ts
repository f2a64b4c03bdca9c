import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { answerQuery, udpLimit } from "./answer.ts";
import { buildAnswerTable, fastAnswer } from "./fast.ts";
import { rotateAnswers } from "./rotate.ts";
import { decodeMessage, newQueryScan, scanQuery } from "../codec/decode.ts";
import { encodeMessage } from "../codec/encode.ts";
import { type Message, queryMessage, RRClass, RRType } from "../codec/records.ts";
import { buildZone } from "../zone/zone_index.ts";
import {
  bigHeadlessSnapshot,
  FIXTURE_REVERSE_CIDRS,
  fixtureSnapshot,
} from "../../../tests/support/dns_fixture.ts";
import { ip } from "../../../tests/support/model_values.ts";

const OPTIONS = {
  clusterDomain: "cluster.local",
  ttl: 30,
  reverseCidrs: FIXTURE_REVERSE_CIDRS,
  serial: 7,
};

function query(name: string, type: number, id: number, edns: boolean, dnssecOk = false): Message {
  return queryMessage([{ name, type, class: RRClass.IN }], {
    id,
    rd: id % 2 === 0,
    cd: id % 3 === 0,
    ...(edns ? { edns: { udpSize: 1232, version: 0, dnssecOk, options: [] } } : {}),
  });
}

/** Random-case version of a name (0x20 style). */
function mixCase(name: string, seed: number): string {
  let out = "";
  for (let i = 0; i < name.length; i++) {
    out += ((seed >> (i % 16)) & 1) ? name[i].toUpperCase() : name[i];
  }
  return out;
}

for (const strictSpec of [false, true]) {
  Deno.test(
    `fast path: byte-identical to the general path for every precomputed answer (${
      strictSpec ? "--dns-strict-spec" : "CoreDNS's answers"
    })`,
    () => fastMatchesGeneral(strictSpec),
  );
}

function fastMatchesGeneral(strictSpec: boolean) {
  const zone = buildZone(fixtureSnapshot(), {
    ...OPTIONS,
    strictSpec,
    nsAddresses: [ip("169.254.20.10"), ip("2001:db8::53")],
  });
  const table = buildAnswerTable(zone);
  assert(table.count >= 40, `only ${table.count} precomputed answers`);
  const scan = newQueryScan();
  const out = new Uint8Array(4096);
  let checked = 0, declined = 0;
  for (const [name, node] of zone.nodes) {
    for (const type of new Set([RRType.A, RRType.AAAA, ...node.records.map((rr) => rr.type)])) {
      for (const [i, edns] of [false, true].entries()) {
        const q = query(mixCase(name, checked * 7919 + i), type, checked + i, edns, i === 1);
        const bytes = encodeMessage(q);
        assert(scanQuery(bytes, bytes.length, scan));
        for (const ra of [false, true]) {
          const n = fastAnswer(table, bytes, scan, out, 0, udpLimit(q), ra);
          const general = answerQuery(zone, q, { recursionAllowed: ra });
          if (
            answerQuery(zone, q, { recursionAllowed: true }).kind !== "reply" ||
            general.kind !== "reply"
          ) {
            assertEquals(n, -1, `${name} ${type} should not be precomputed`);
            continue;
          }
          const expected = encodeMessage(general.message, udpLimit(q));
          if (n < 0) {
            // Declined: the general path answers. Never for an address name's A/AAAA or for a
            // type the name holds, unless the answer needs truncation.
            const d = decodeMessage(expected);
            const holds = (t: number) => node.records.some((rr) => rr.type === t);
            const addressName = [RRType.A, RRType.AAAA, RRType.CNAME].some(holds);
            const mustBeFast = holds(type) ||
              (addressName && (type === RRType.A || type === RRType.AAAA));
            // An SRV target's zone part is written as asked and cannot point into the question:
            // such answers are precomputed for a lower-case question only.
            const caseBound = q.questions[0].name !== name && d.ok &&
              d.message.answers.some((rr) => rr.type === RRType.SRV);
            assert(
              !mustBeFast || (d.ok && d.message.tc) || caseBound,
              `${name} ${type} declined without reason`,
            );
            if (caseBound) {
              const lower = query(name, type, checked + i, edns, i === 1);
              const lowerBytes = encodeMessage(lower);
              assert(scanQuery(lowerBytes, lowerBytes.length, scan));
              const m = fastAnswer(table, lowerBytes, scan, out, 0, udpLimit(lower), ra);
              const g = answerQuery(zone, lower, { recursionAllowed: ra });
              assert(g.kind === "reply");
              assertEquals(
                [...out.subarray(0, m)],
                [...encodeMessage(g.message, udpLimit(lower))],
                `${name} type ${type} in lower case`,
              );
              assert(scanQuery(bytes, bytes.length, scan));
            }
            declined++;
            continue;
          }
          assertEquals(
            [...out.subarray(0, n)],
            [...expected],
            `${name} type ${type} edns ${edns} ra ${ra}`,
          );
          checked++;
        }
      }
    }
  }
  assert(checked > 100, `only ${checked} checked`);
  assert(declined > 0, "empty non-terminals should be left to the general path");
}

Deno.test("fast path: declines unknown names, other classes and answers that need truncation", () => {
  const zone = buildZone(bigHeadlessSnapshot(100), OPTIONS);
  const table = buildAnswerTable(zone);
  const scan = newQueryScan();
  const out = new Uint8Array(65535);
  const big = encodeMessage(query("big.default.svc.cluster.local", RRType.A, 1, false));
  assert(scanQuery(big, big.length, scan));
  assertEquals(fastAnswer(table, big, scan, out, 0, 512, true), -1);
  // Over TCP the same answer fits.
  assert(fastAnswer(table, big, scan, out, 0, 65535, true) > 1000);
  const unknown = encodeMessage(query("nosuch.default.svc.cluster.local", RRType.A, 1, false));
  assert(scanQuery(unknown, unknown.length, scan));
  assertEquals(fastAnswer(table, unknown, scan, out, 0, 512, true), -1);
  const chaos = encodeMessage({
    ...query("big.default.svc.cluster.local", RRType.A, 1, false),
    questions: [{ name: "big.default.svc.cluster.local", type: 1, class: RRClass.CH }],
  });
  assert(scanQuery(chaos, chaos.length, scan));
  assertEquals(fastAnswer(table, chaos, scan, out, 0, 512, true), -1);
});

Deno.test("fast path: multi-record answers rotate by the turn, as the general path's rotateAnswers", () => {
  const zone = buildZone(bigHeadlessSnapshot(5), OPTIONS);
  const table = buildAnswerTable(zone);
  const scan = newQueryScan();
  const out = new Uint8Array(4096);
  for (const edns of [false, true]) {
    const q = query("big.default.svc.cluster.local", RRType.A, 7, edns);
    const bytes = encodeMessage(q);
    assert(scanQuery(bytes, bytes.length, scan));
    const general = answerQuery(zone, q, { recursionAllowed: true });
    assert(general.kind === "reply" && general.message.answers.length === 5);
    const firsts = new Set<string>();
    for (let turn = 0; turn < 7; turn++) {
      const n = fastAnswer(table, bytes, scan, out, 0, 4096, true, turn);
      const d = decodeMessage(out.slice(0, n));
      assert(d.ok);
      const want = rotateAnswers(general.message.answers, turn);
      assertEquals(
        d.message.answers.map((r) => r.data),
        want.map((r) => r.data),
        `turn ${turn} (edns ${edns})`,
      );
      assertEquals(d.message.questions, q.questions);
      firsts.add(JSON.stringify(d.message.answers[0].data));
    }
    assertEquals(firsts.size, 5, "each address comes first in turn");
  }
});
