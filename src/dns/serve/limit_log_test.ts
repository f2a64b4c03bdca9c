import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { LimitLog } from "./limit_log.ts";
import { applyStats, DnsStats } from "./stats.ts";

Deno.test("LimitLog: every hit counts; one line per limit and address a minute, with the count since", () => {
  let now = 0;
  const lines: string[] = [];
  const stats = new DnsStats();
  const limits = new LimitLog({ stats, warn: (m) => lines.push(m), now: () => now });
  const steps: { at: number; limit: "parse_budget" | "rrl"; address: string; logged: string }[] = [
    { at: 0, limit: "parse_budget", address: "198.18.0.10", logged: "first" },
    { at: 10, limit: "parse_budget", address: "198.18.0.10", logged: "" },
    { at: 20, limit: "rrl", address: "198.18.0.10", logged: "another limit" },
    { at: 30, limit: "parse_budget", address: "198.18.0.11", logged: "another address" },
    { at: 59_999, limit: "parse_budget", address: "198.18.0.10", logged: "" },
    { at: 60_000, limit: "parse_budget", address: "198.18.0.10", logged: "a minute later" },
  ];
  for (const s of steps) {
    now = s.at;
    const before = lines.length;
    limits.hit(s.limit, s.address, "why");
    assertEquals(lines.length - before, s.logged ? 1 : 0, `${s.at}: ${s.logged || "quiet"}`);
  }
  assertEquals(lines[0], 'DNS limit parse_budget hit by "198.18.0.10": why');
  // Two suppressed since the first line (at 10 and 59,999).
  assertEquals(
    lines[3],
    'DNS limit parse_budget hit by "198.18.0.10": why (2 more since the last report)',
  );
  const registry = new MetricsRegistry();
  applyStats(registry, stats.drain());
  const text = registry.render();
  assertEquals(text.includes('svcgate_dns_limit_hits_total{limit="parse_budget"} 5'), true, text);
  assertEquals(text.includes('svcgate_dns_limit_hits_total{limit="rrl"} 1'), true, text);
});

Deno.test("LimitLog: note logs without counting; forgotten addresses log again", () => {
  let now = 0;
  const lines: string[] = [];
  const stats = new DnsStats();
  const limits = new LimitLog({ stats, warn: (m) => lines.push(m), now: () => now, remember: 2 });
  limits.note("slow", "198.18.0.1", "one");
  limits.note("slow", "198.18.0.2", "two");
  limits.note("slow", "198.18.0.1", "one again");
  // A third address pushes out the oldest, so the first logs again within the minute.
  limits.note("slow", "198.18.0.3", "three");
  now = 5;
  limits.note("slow", "198.18.0.1", "one, forgotten");
  assertEquals(lines, ["one", "two", "three", "one, forgotten"]);
  assertEquals(stats.drain().labelled.limitHits.every((n) => n === 0), true);
});
