import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { renderOptionsFor } from "./compose.ts";
import { parseArgs } from "../config/flags.ts";
import { ips } from "../../tests/support/model_values.ts";

Deno.test("renderOptionsFor: the kube-proxy cutover flags reach the renderer", () => {
  const nodeIps = ips("198.18.100.1", "2001:db8::1", "198.18.0.1");
  // [argv, what the options hold]
  const table: [string[], Record<string, unknown>][] = [
    [["run"], { zone: undefined, masqueradeAll: undefined, localDetect: undefined, nodePorts: "" }],
    [
      [
        "run",
        "--node-labels=topology.kubernetes.io/zone=zone-a",
        "--masquerade-all",
        "--detect-local-mode=BridgeInterface",
        "--pod-bridge-interface=cbr0",
        "--nodeport-addresses=primary",
      ],
      {
        zone: "zone-a",
        masqueradeAll: true,
        localDetect: { mode: "BridgeInterface", bridge: "cbr0" },
        // The first address of each family, in interface order.
        nodePorts: "198.18.100.1/32,2001:db8::1/128 primary",
      },
    ],
  ];
  for (const [argv, expected] of table) {
    const o = renderOptionsFor(parseArgs(argv, { hostname: "node-a" }).config, nodeIps);
    assertEquals(
      {
        zone: o.zone,
        masqueradeAll: o.masqueradeAll,
        localDetect: o.localDetect,
        nodePorts: `${o.nodePortAddresses.map((c) => c.text).join(",")}${
          o.nodePortPrimary ? " primary" : ""
        }`,
      },
      expected,
      argv.join(" "),
    );
    assertEquals(o.nodeIps, [...nodeIps].sort(), "the node's addresses, for LB source ranges");
  }
});
