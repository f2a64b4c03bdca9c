/**
 * A {@link KubeAccess} for tests: one context "ctx" with cluster "c" (https://198.18.0.1:6443,
 * TLS verification on, unless `cluster` says otherwise) and user "u".
 * @module
 */

import { KubeAccess, type KubeAccessOptions } from "../../src/sources/kube/kube_access.ts";

/** A KubeAccess whose current user and cluster carry these fields. */
export function testAccess(
  user: Record<string, unknown>,
  cluster: Record<string, unknown> = {},
): KubeAccess {
  return new KubeAccess({
    clusters: [{ name: "c", server: "https://198.18.0.1:6443", skipTLSVerify: false, ...cluster }],
    users: [{ name: "u", ...user }],
    contexts: [{ name: "ctx", cluster: "c", user: "u" }],
    currentContext: "ctx",
  } as KubeAccessOptions);
}
