/**
 * An in-memory upstream on the other side of the forwarder's transport seam (upstream.ts
 * UpstreamTransport): each question is decoded and answered by a function of the test, which may
 * also time out or send garbage. For the forwarder's unit tests; e2e tests use knotd.
 * @module
 */

import { decodeMessage } from "../../src/dns/codec/decode.ts";
import { encodeMessage } from "../../src/dns/codec/encode.ts";
import type { Message } from "../../src/dns/codec/records.ts";
import type { Upstream, UpstreamTransport } from "../../src/dns/serve/upstream.ts";

/** What the fake upstream does with one question. */
export type FakeAnswer = Message | "timeout" | "garbage";

/** An upstream answering with `answer`, recording every call. */
export class FakeTransport implements UpstreamTransport {
  calls: { server: string; tcp: boolean; name: string }[] = [];
  constructor(
    readonly answer: (server: Upstream, q: Message, tcp: boolean) => FakeAnswer,
  ) {}
  exchange(
    server: Upstream,
    packet: Uint8Array,
    tcp: boolean,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    const d = decodeMessage(packet);
    if (!d.ok) throw new Error(d.error);
    this.calls.push({ server: server.text, tcp, name: d.message.questions[0]?.name ?? "" });
    const a = this.answer(server, d.message, tcp);
    if (a === "timeout") {
      return new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`${server.text}: timeout`)), timeoutMs)
      );
    }
    if (a === "garbage") return Promise.resolve(new Uint8Array([1, 2, 3]));
    return Promise.resolve(encodeMessage({ ...a, id: d.message.id }));
  }
  close(): void {}
}
