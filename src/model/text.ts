/**
 * Text helpers shared across the codebase. Pure.
 * @module
 */

/**
 * Orders strings by UTF-16 code units, as `<` does: the same order on every machine and locale
 * (`localeCompare` depends on both), so sorted output is stable and diffs read well.
 *
 * @example
 * ```ts
 * ["web", "api", "Web"].sort(compareText); // ["Web", "api", "web"]
 * ```
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
