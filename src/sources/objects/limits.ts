/**
 * Bounds on the lists inside one object, so that a hostile or broken object costs a length check,
 * not a walk over 100,000 items (and then as many nft elements). Each has a flag; the defaults
 * follow Kubernetes where it has a bound. Pure.
 * @module
 */

import type { Ctx } from "./validate.ts";

/** How many items an object's lists may hold. */
export interface ObjectLimits {
  /** Ports of one Service (`--max-service-ports`). */
  readonly servicePorts: number;
  /** Endpoints of one EndpointSlice (`--max-endpoints-per-slice`). */
  readonly sliceEndpoints: number;
  /** Addresses plus notReadyAddresses of one v1 Endpoints subset (`--max-endpoints-per-subset`). */
  readonly subsetEndpoints: number;
}

/**
 * The defaults: the API server refuses an EndpointSlice of more than 1,000 endpoints, and the
 * Endpoints controller truncates an Endpoints object at 1,000 addresses (the
 * endpoints.kubernetes.io/over-capacity annotation). Services have no API bound; 1,000 ports
 * already make 1,000 map elements per endpoint count in nftables.
 */
export const DEFAULT_OBJECT_LIMITS: ObjectLimits = {
  servicePorts: 1000,
  sliceEndpoints: 1000,
  subsetEndpoints: 1000,
};

/** The flag that sets each limit, named in errors. */
const FLAGS: Record<keyof ObjectLimits, string> = {
  servicePorts: "--max-service-ports",
  sliceEndpoints: "--max-endpoints-per-slice",
  subsetEndpoints: "--max-endpoints-per-subset",
};

/**
 * Reports an error and returns false when `count` items at `path` are more than the limit;
 * callers check this before reading the items.
 */
export function withinLimit(
  ctx: Ctx,
  path: string,
  count: number,
  limit: keyof ObjectLimits,
  what: string,
): boolean {
  const max = (ctx.options.limits ?? DEFAULT_OBJECT_LIMITS)[limit];
  if (count <= max) return true;
  ctx.error(
    path,
    `${count} ${what}, more than the limit of ${max} (${FLAGS[limit]}); the object is rejected`,
  );
  return false;
}
