/**
 * Two DNS servers on one port (SO_REUSEPORT, `--reuse-port`), on loopback: a second TCP
 * listener binds beside the first (Deno.listen cannot, without --unstable-net), and a UDP socket
 * that left its group (FfiUdpServer.leaveGroup, as a stopping engine does) gets no new query
 * while it still answers.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import dgram from "node:dgram";
import { buildAnswerTable } from "../answer/fast.ts";
import { AllowList } from "./allow_list.ts";
import { QueryHandler } from "./handler.ts";
import { DnsStats } from "./stats.ts";
import { TcpDnsServer } from "./tcp.ts";
import { ffiAvailability, FfiUdpServer } from "./udp_ffi.ts";
import { cidr, fixtureZone } from "../../../tests/support/dns_fixture.ts";
import { decodeMessage } from "../codec/decode.ts";
import { encodeMessage } from "../codec/encode.ts";
import { queryMessage, Rcode, RRClass, RRType } from "../codec/records.ts";

/** A handler with the fixture zone, or none (cluster names then get SERVFAIL). */
function handler(withZone: boolean): QueryHandler {
  const h = new QueryHandler({
    clusterDomain: "cluster.local",
    reverseCidrs: [cidr("198.19.0.0/16")],
    forwarder: null,
    stats: new DnsStats(),
  });
  if (withZone) {
    const zone = fixtureZone();
    h.setZone(zone, buildAnswerTable(zone));
  }
  return h;
}

const QUERY = encodeMessage(
  queryMessage([{ name: "web.default.svc.cluster.local", type: RRType.A, class: RRClass.IN }], {
    id: 7,
  }),
);

Deno.test({
  name: "SO_REUSEPORT: a second TCP listener binds the same port and answers",
  ignore: !ffiAvailability().ok,
  async fn() {
    const common = {
      hostname: "127.0.0.1",
      allow: new AllowList([cidr("127.0.0.0/8")]),
      onError: () => {},
      socket: { kind: "reuseport" } as const,
    };
    const a = TcpDnsServer.open({ ...common, port: 0, handler: handler(true) });
    const b = TcpDnsServer.open({ ...common, port: a.port, handler: handler(true) });
    try {
      assertEquals(b.port, a.port);
      let refused = "";
      try {
        TcpDnsServer.open({
          ...common,
          port: a.port,
          handler: handler(true),
          socket: { kind: "deno" },
        });
      } catch (e) {
        refused = (e as Error).message;
      }
      assert(refused.includes(`127.0.0.1:${a.port}`), `without SO_REUSEPORT: "${refused}"`);
      a.stopAccepting();
      // Connections now all reach b.
      for (let i = 0; i < 20; i++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: a.port });
        try {
          const framed = new Uint8Array(QUERY.length + 2);
          framed[1] = QUERY.length;
          framed.set(QUERY, 2);
          await conn.write(framed);
          const buf = new Uint8Array(4096);
          let have = 0;
          while (have < 2 || have < ((buf[0] << 8) | buf[1]) + 2) {
            const n = await conn.read(buf.subarray(have));
            assert(n !== null, "the connection closed before its answer");
            have += n;
          }
          const reply = decodeMessage(buf.subarray(2, have));
          assert(reply.ok && reply.message.rcode === Rcode.NOERROR);
        } finally {
          conn.close();
        }
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  },
});

Deno.test({
  name: "SO_REUSEPORT: a UDP socket that left its group gets no new query; the group answers",
  ignore: !ffiAvailability().ok,
  async fn() {
    const common = {
      hostname: "127.0.0.1",
      reusePort: true,
      allow: new AllowList([cidr("127.0.0.0/8")]),
      onError: () => {},
    };
    // The leaving one has no zone: a query it answered would be a SERVFAIL.
    const leaving = FfiUdpServer.open({ ...common, port: 0, handler: handler(false) });
    const staying = FfiUdpServer.open({ ...common, port: leaving.port, handler: handler(true) });
    const loops = [leaving.run(), staying.run()];
    try {
      assert(leaving.leaveGroup(), "connect() to its own address");
      // Many source ports: the kernel's hash would spread them over both sockets.
      const rcodes: number[] = [];
      for (let i = 0; i < 64; i++) {
        const sock = dgram.createSocket("udp4");
        try {
          await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
          const reply = await new Promise<Uint8Array>((resolve) => {
            sock.once("message", (m: Uint8Array) => resolve(new Uint8Array(m)));
            sock.send(QUERY, leaving.port, "127.0.0.1");
          });
          const d = decodeMessage(reply);
          assert(d.ok);
          rcodes.push(d.message.rcode);
        } finally {
          sock.close();
        }
      }
      assertEquals(rcodes.filter((r) => r !== Rcode.NOERROR).length, 0, `rcodes ${rcodes}`);
    } finally {
      leaving.stop();
      staying.stop();
      await Promise.all(loops);
    }
  },
});
