import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { buildAnswerTable } from "../answer/fast.ts";
import { QueryHandler } from "./handler.ts";
import { DnsStats } from "./stats.ts";
import { decodeMessage } from "../codec/decode.ts";
import { FIXTURE_REVERSE_CIDRS, fixtureZone } from "../../../tests/support/dns_fixture.ts";
import { fuzzPackets } from "../../../tests/support/dns_fuzz.ts";

const SEED = Number(Deno.env.get("DNS_FUZZ_SEED") ?? "20240601");

Deno.test(`fuzz (seed ${SEED}): 100,000 packets through the handler: no crash, no bug path, no amplification of garbage`, () => {
  const stats = new DnsStats();
  const h = new QueryHandler({
    clusterDomain: "cluster.local",
    reverseCidrs: FIXTURE_REVERSE_CIDRS,
    forwarder: null,
    stats,
  });
  const zone = fixtureZone();
  h.setZone(zone, buildAnswerTable(zone));
  let replies = 0, dropped = 0, malformed = 0;
  for (const packet of fuzzPackets(SEED, 100_000)) {
    const decoded = decodeMessage(packet);
    for (const udp of [true, false]) {
      const out = h.handle(packet, true, udp);
      assert(!(out instanceof Promise), "no forwarder is configured, so nothing may be async");
      if (out === null) {
        dropped++;
        continue;
      }
      replies++;
      const reply = decodeMessage(out);
      assert(
        reply.ok,
        `reply to ${[...packet].join(",")} does not decode: ${reply.ok ? "" : reply.error}`,
      );
      assert(reply.message.qr, "a reply without QR");
      if (udp) assert(out.length <= 1232, `UDP reply of ${out.length} bytes`);
      if (!decoded.ok) {
        malformed++;
        // Unreadable queries get a bare header: never more bytes than they sent.
        assertEquals(out.length, 12);
        assert(out.length <= packet.length);
      } else {
        assert(!decoded.message.qr, "answered a response");
        assertEquals(reply.message.id, decoded.message.id);
      }
    }
  }
  assertEquals(stats.counters.internalErrors, 0);
  assert(
    replies > 50_000 && dropped > 1000 && malformed > 10_000,
    `replies ${replies} dropped ${dropped} malformed ${malformed}`,
  );
});
