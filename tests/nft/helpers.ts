/**
 * Helpers for the nft end-to-end tests: a dataplane whose nft and conntrack run inside the lab's
 * node namespace, the probe client, and bridge hairpin mode.
 * @module
 */

import type { Lab } from "../lab/lab.ts";
import { NftDataplane, type NftDataplaneOptions } from "../../src/nft/dataplane.ts";
import {
  type ConntrackCleaner,
  ConntrackCommand,
  NftCommandExecutor,
  type NftExecutor,
} from "../../src/nft/executor.ts";
import type { RenderOptions } from "../../src/nft/render.ts";
import { cidr } from "../support/nft_fixtures.ts";

const PROBE = new URL("./probe.ts", import.meta.url).pathname;

/** Render options of the lab's node: pods in 198.18.0.0/24 and 2001:db8::/64, node "node-a". */
export const E2E_OPTIONS: RenderOptions = {
  clusterCidrs: [cidr("198.18.0.0/24"), cidr("2001:db8::/64")],
  nodeName: "node-a",
  nodePortAddresses: [],
};

/** nft and conntrack inside the lab's node namespace. */
export function nodeTools(lab: Lab): { executor: NftCommandExecutor; conntrack: ConntrackCommand } {
  const argvPrefix = ["ip", "netns", "exec", lab.node.ns];
  return {
    executor: new NftCommandExecutor({ argvPrefix }),
    conntrack: new ConntrackCommand({ argvPrefix }),
  };
}

/** A dataplane for the lab's node. */
export function labDataplane(
  lab: Lab,
  extra: Partial<NftDataplaneOptions> & { executor?: NftExecutor; conntrack?: ConntrackCleaner } =
    {},
): NftDataplane {
  const tools = nodeTools(lab);
  return new NftDataplane({
    executor: tools.executor,
    conntrack: tools.conntrack,
    renderOptions: E2E_OPTIONS,
    ...extra,
  });
}

/** Runs the probe client in a namespace and returns its JSON report. */
export async function probe<T = Record<string, unknown>>(
  lab: Lab,
  ns: string,
  args: (string | number)[],
): Promise<T> {
  const r = await lab.exec(ns, [Deno.execPath(), "run", "--allow-net", PROBE, ...args.map(String)]);
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(
      `probe ${args.join(" ")} in ${ns} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout}`,
    );
  }
}

/** The shape of `probe tcp …`. */
export interface TcpReport {
  answers: Record<string, number>;
  errors: Record<string, number>;
  maxErrorMs: number;
}

/** Runs nft in the node namespace (for inspecting or damaging state) and returns stdout. */
export async function nftInNode(lab: Lab, args: string[], stdin?: string): Promise<string> {
  const r = await lab.exec(lab.node.ns, ["nft", ...args], stdin === undefined ? {} : { stdin });
  if (r.code !== 0) throw new Error(`nft ${args.join(" ")} in the node failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Fails with both values shown. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}
