/**
 * FNV-1a, the one non-cryptographic string hash of the codebase: cheap, well spread for short
 * keys, and stable across versions (VIP allocation and probe staggering depend on its values).
 * Pure.
 * @module
 */

/**
 * 32-bit FNV-1a over the UTF-16 code units of the text, as an unsigned integer.
 *
 * @example
 * ```ts
 * fnv1a32(""); // 2166136261 (0x811c9dc5, the offset basis)
 * ```
 */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * 64-bit FNV-1a over the UTF-8 bytes of the text, as a bigint.
 *
 * @example
 * ```ts
 * fnv1a64("a"); // 0xaf63dc4c8601ec8cn
 * ```
 */
export function fnv1a64(text: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}
