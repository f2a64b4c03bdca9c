/**
 * Answer rotation for multi-record answers (headless services, forwarded answers), as CoreDNS's
 * `loadbalance` plugin: clients that take the first address spread over all of them. CoreDNS
 * shuffles at random; svcgate rotates by a counter the caller keeps, so over N asks each of N
 * addresses comes first exactly once (the same spread, and testable). Only A, AAAA and MX move,
 * each among its own positions, so CNAMEs stay before the addresses they lead to (glibc needs
 * that). Pure.
 * @module
 */

import { type ResourceRecord, RRType } from "../codec/records.ts";

const ROTATED: ReadonlySet<number> = new Set([RRType.A, RRType.AAAA, RRType.MX]);

/**
 * The answers with each rotated type's records turned by `turn` places among their positions;
 * the same array when nothing would move.
 *
 * @example
 * ```ts
 * rotateAnswers([cname, a1, a2, a3], 1); // [cname, a2, a3, a1]
 * ```
 */
export function rotateAnswers(
  answers: readonly ResourceRecord[],
  turn: number,
): readonly ResourceRecord[] {
  if (answers.length < 2) return answers;
  let out: ResourceRecord[] | null = null;
  for (const type of ROTATED) {
    const at: number[] = [];
    for (let i = 0; i < answers.length; i++) if (answers[i].type === type) at.push(i);
    const n = at.length;
    if (n < 2) continue;
    const k = turn % n;
    if (k === 0) continue;
    out ??= [...answers];
    for (let j = 0; j < n; j++) out[at[j]] = answers[at[(j + k) % n]];
  }
  return out ?? answers;
}
