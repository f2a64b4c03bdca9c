import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { EndpointIndex, ipv4Key } from "./endpoint_index.ts";
import { mulberry32 } from "../../../tests/support/test_random.ts";

Deno.test("ipv4Key: dotted quads only", () => {
  assertEquals(
    ["198.18.0.1", "0.0.0.0", "255.255.255.255", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::1", ""].map(
      ipv4Key,
    ),
    [(198 << 24) | (18 << 16) | 1, 0, -1, null, null, null, null, null],
  );
});

Deno.test("EndpointIndex: random adds and removes agree with a plain model", () => {
  const random = mulberry32(16);
  const index = new EndpointIndex();
  const model = new Map<string, Set<string>>();
  const addresses = [
    ...Array.from({ length: 600 }, (_, i) => `198.18.${i >> 8}.${i & 0xff}`),
    ...Array.from({ length: 40 }, (_, i) => `2001:db8::${i.toString(16)}`),
  ];
  const keys = Array.from({ length: 30 }, (_, i) => `ns-${i % 4}/svc-${i}`);
  for (let step = 0; step < 20_000; step++) {
    const address = addresses[Math.floor(random() * addresses.length)];
    const key = keys[Math.floor(random() * keys.length)];
    if (random() < 0.55) {
      index.add(address, key);
      if (!model.has(address)) model.set(address, new Set());
      model.get(address)!.add(key);
    } else {
      index.remove(address, key);
      model.get(address)?.delete(key);
    }
    if (step % 997 === 0 || step === 19_999) {
      let pairs = 0;
      for (const a of addresses) {
        const want = [...model.get(a) ?? []].sort();
        pairs += want.length;
        assertEquals([...index.get(a)].sort(), want, `${a} at step ${step}`);
      }
      assertEquals(index.size, pairs);
    }
  }
});
