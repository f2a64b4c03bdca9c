/**
 * The nftables dataplane: render a snapshot into `ip svcgate` / `ip6 svcgate`, diff against what
 * was applied, apply atomically with `nft -f -`, clean up stale UDP flows, repair drift.
 *
 * @example
 * ```ts
 * import { ConntrackCommand, NftCommandExecutor, NftDataplane } from "./src/nft/mod.ts";
 * const dataplane = new NftDataplane({
 *   executor: new NftCommandExecutor(),
 *   conntrack: new ConntrackCommand(),
 *   renderOptions: { clusterCidrs, nodeName, nodePortAddresses: [] },
 * });
 * await dataplane.adopt();
 * await dataplane.apply(snapshot);
 * ```
 * @module
 */

export {
  NftDataplane,
  type NftDataplaneOptions,
  NftSyncError,
  type SyncReport,
} from "./dataplane.ts";
export {
  type CommandOptions,
  type ConntrackCleaner,
  ConntrackCommand,
  NftCommandExecutor,
  NftError,
  type NftExecutor,
  type UdpFlowFilter,
} from "./executor.ts";
export { FakeConntrack, FakeNftExecutor } from "./fake_executor.ts";
export { DEFAULT_MASQUERADE_BIT, type RenderOptions, renderRuleset } from "./render.ts";
export {
  type Family,
  formatRuleset,
  formatTable,
  type Ruleset,
  type TableSpec,
} from "./ruleset.ts";
export { type Outcome, type Packet, simulate, simulateText } from "./simulate.ts";
