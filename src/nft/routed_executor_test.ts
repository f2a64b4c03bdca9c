import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { NftError, type NftExecutor } from "./executor.ts";
import { RoutedExecutor } from "./routed_executor.ts";
import type { Family } from "./ruleset.ts";

/** Records which calls reached it; `fail` makes every call throw it. */
class Recorder implements NftExecutor {
  calls: string[] = [];
  fail: Error | null = null;
  constructor(readonly name: string) {}
  #call<T>(what: string, value: T): Promise<T> {
    this.calls.push(what);
    return this.fail ? Promise.reject(this.fail) : Promise.resolve(value);
  }
  apply(script: string) {
    return this.#call(`apply ${script.length}`, undefined);
  }
  listTable(family: Family) {
    return this.#call(`listTable ${family}`, `{"from":"${this.name}"}`);
  }
  listSet(family: Family, kind: "set" | "map", name: string) {
    return this.#call(`listSet ${family} ${kind} ${name}`, "{}");
  }
  listOutline(family: Family) {
    return this.#call(`listOutline ${family}`, "{}");
  }
}

function setup() {
  const small = new Recorder("small"), big = new Recorder("big");
  return { small, big, nft: new RoutedExecutor({ small, big, bigScriptBytes: 100 }) };
}

Deno.test("RoutedExecutor: big transactions and full listings go to the command, the rest stay", async () => {
  const { small, big, nft } = setup();
  await nft.apply("x".repeat(99));
  await nft.apply("x".repeat(100));
  assertEquals(await nft.listTable("ip"), '{"from":"big"}');
  await nft.listSet("ip", "map", "affinity-tcp");
  await nft.listOutline("ip6");
  assertEquals(small.calls, ["apply 99", "listSet ip map affinity-tcp", "listOutline ip6"]);
  assertEquals(big.calls, ["apply 100", "listTable ip"]);
});

Deno.test("RoutedExecutor: nft refusing a big transaction is the caller's error", async () => {
  const { small, big, nft } = setup();
  big.fail = new NftError("Applying an nft transaction", {
    stderr: "Error: No such file or directory",
    exitCode: 1,
    reason: "No such file or directory",
  });
  await rejects(nft.apply("x".repeat(200)), /No such file or directory/);
  assertEquals(small.calls, [], "not retried in process: it would be refused the same way");
});

Deno.test("RoutedExecutor: when the command cannot run, everything stays in process", async () => {
  const { small, big, nft } = setup();
  big.fail = new NftError('Running "nft -f -"', {
    stderr: "",
    exitCode: -1,
    reason: 'Requires run access to "nft"',
  });
  await nft.apply("x".repeat(200));
  assertEquals(await nft.listTable("ip6"), '{"from":"small"}');
  assertEquals(big.calls, ["apply 200"], "tried once, then no more");
  assertEquals(small.calls, ["apply 200", "listTable ip6"]);
});
