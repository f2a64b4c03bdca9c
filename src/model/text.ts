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

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a duration as Go's time.ParseDuration writes them (kube-proxy's flags, Kubernetes
 * annotations): `5ms`, `1.5s`, `2m`, `1h`, `24h0m0s`, `500us`, or `0`, into milliseconds; null
 * when the text is not one (no sign, no spaces, lower-case units).
 *
 * @example
 * ```ts
 * parseDuration("1m30s"); // 90000
 * parseDuration("5 sec"); // null
 * ```
 */
export function parseDuration(text: string): number | null {
  if (text === "0") return 0;
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) return null;
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    ms += Number(n) * DURATION_UNITS[unit];
  }
  return ms;
}
