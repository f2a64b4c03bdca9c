import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { categorizeEndpoints, type EndpointConditions } from "./topology.ts";

interface Ep extends EndpointConditions {
  readonly name: string;
}

/** `name:flags@node`: flags r (ready), s (serving), t (terminating). */
function ep(spec: string): Ep {
  const [nameFlags, nodeName] = spec.split("@");
  const [name, flags = ""] = nameFlags.split(":");
  return {
    name,
    ready: flags.includes("r"),
    serving: flags.includes("s") || flags.includes("r"),
    terminating: flags.includes("t"),
    nodeName,
  };
}

const names = (list: readonly Ep[]) => list.map((e) => e.name).join(",");

Deno.test("categorizeEndpoints: traffic policies and the terminating fallback, as kube-proxy", () => {
  // [what, endpoints, internal policy, external policy, cluster, local, internal, hasAny]
  const table: [string, string[], string, string, string, string, string, boolean][] = [
    ["no endpoints", [], "Cluster", "Cluster", "", "", "", false],
    ["ready ones only", ["a:r@n1", "b:st@n2", "c:@n1"], "Cluster", "Cluster", "a", "a", "a", true],
    [
      "none ready: serving-terminating",
      ["a:st@n1", "b:t@n2"],
      "Cluster",
      "Cluster",
      "a",
      "a",
      "a",
      true,
    ],
    ["not serving: nothing", ["a:t@n1", "b:@n2"], "Cluster", "Cluster", "", "", "", false],
    ["serving, not terminating", ["d:s@n1", "b:st@n2"], "Cluster", "Cluster", "b", "", "b", true],
    [
      "internal Local, local ready",
      ["a:r@n1", "b:r@n2"],
      "Local",
      "Cluster",
      "a,b",
      "a",
      "a",
      true,
    ],
    ["internal Local, only remote", ["b:r@n2"], "Local", "Cluster", "b", "", "", true],
    ["local falls back on its own", ["a:st@n1", "b:r@n2"], "Local", "Cluster", "b", "a", "a", true],
    [
      "external Local leaves internal",
      ["a:r@n1", "b:r@n2"],
      "Cluster",
      "Local",
      "a,b",
      "a",
      "a,b",
      true,
    ],
  ];
  for (const [what, eps, itp, etp, cluster, local, internal, hasAny] of table) {
    const got = categorizeEndpoints(
      eps.map(ep),
      { internalTrafficPolicy: itp as "Cluster", externalTrafficPolicy: etp as "Cluster" },
      { nodeName: "n1" },
    );
    assertEquals(
      [names(got.cluster), names(got.local), names(got.internal), got.hasAny],
      [cluster, local, internal, hasAny],
      what,
    );
  }
});
