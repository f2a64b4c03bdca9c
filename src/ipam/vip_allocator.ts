/**
 * The VIP allocator as a long-running owner holds it: the state between reloads, the lock-file
 * pins, and the identity of unchanged services, so the model store sees a reload as the minimal
 * diff. The allocation itself is {@link allocateVips} (allocator.ts, pure).
 * @module
 */

import type { Cidr } from "../model/ip.ts";
import type { Service } from "../model/types.ts";
import { serviceKey } from "../model/types.ts";
import {
  allocateVips,
  type AllocationResult,
  DEFAULT_QUARANTINE_MS,
  sameList,
  type VipPins,
} from "./allocator.ts";
import type { IpamState } from "./state.ts";

/**
 * Holds the IPAM state between reloads and keeps the identity of unchanged services, so the
 * model store sees a reload as the minimal diff (its change tracking compares objects by identity).
 *
 * @example
 * ```ts
 * const ipam = new VipAllocator(loadedState, { cidrs });
 * const r = ipam.allocate(services, Date.now());
 * if (r.stateChanged) await saveIpamState(stateDir, r.state);
 * ```
 */
export class VipAllocator {
  #state: IpamState;
  #cidrs: readonly Cidr[];
  #quarantineMs: number;
  #pins: VipPins | undefined;
  #memo = new Map<string, { input: Service; output: Service }>();

  constructor(
    state: IpamState,
    options: { cidrs: readonly Cidr[]; quarantineMs?: number; pins?: VipPins },
  ) {
    this.#state = state;
    this.#cidrs = options.cidrs;
    this.#quarantineMs = options.quarantineMs ?? DEFAULT_QUARANTINE_MS;
    this.#pins = options.pins;
  }

  /** The current state (what to persist). */
  get state(): IpamState {
    return this.#state;
  }

  /** Replaces the lock-file pins (after the lock file changed); undefined removes them. */
  setPins(pins: VipPins | undefined): void {
    this.#pins = pins;
  }

  /**
   * Allocates for the full current list of services (a missing service releases its VIPs) and
   * adopts the next state. `now` is the time in milliseconds since the epoch.
   */
  allocate(
    services: readonly Service[],
    now: number,
    options: { readonly keepUnlisted?: boolean } = {},
  ): AllocationResult {
    const result = allocateVips(this.#state, services, {
      cidrs: this.#cidrs,
      now,
      quarantineMs: this.#quarantineMs,
      ...(options.keepUnlisted ? { keepUnlisted: true } : {}),
      ...(this.#pins ? { pins: this.#pins } : {}),
    });
    this.#state = result.state;
    const inputs = new Map<string, Service>();
    for (const s of services) {
      const key = serviceKey(s.namespace, s.name);
      if (!inputs.has(key)) inputs.set(key, s);
    }
    const memo = new Map<string, { input: Service; output: Service }>();
    const stable = result.services.map((output) => {
      const key = serviceKey(output.namespace, output.name);
      const input = inputs.get(key)!;
      const prev = this.#memo.get(key);
      const reuse = prev !== undefined && prev.input === input &&
        sameList(prev.output.clusterIPs, output.clusterIPs) &&
        sameList(prev.output.ipFamilies, output.ipFamilies);
      const chosen = reuse ? prev.output : output;
      memo.set(key, { input, output: chosen });
      return chosen;
    });
    this.#memo = memo;
    return { ...result, services: stable };
  }
}
