/**
 * Structured logging: one line per event, text or JSON, with a component field.
 * @module
 */

/** Log severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Extra fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** What every long-running part logs through. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines carry `component`. */
  child(component: string): Logger;
}

/** Where lines go and how they look. */
export interface LoggerOptions {
  readonly format: "text" | "json";
  readonly level?: LogLevel;
  /** Receives each formatted line; defaults to stderr. */
  readonly write?: (line: string) => void;
  /** Returns the timestamp text; injected so tests can freeze it. */
  readonly now?: () => string;
}

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

function formatValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === "string") return /^[\w.:/@+-]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

/**
 * Creates a logger.
 *
 * @example
 * ```ts
 * const log = createLogger({ format: "text" }).child("nft");
 * log.info("synced", { services: 3 });
 * ```
 */
export function createLogger(options: LoggerOptions, component = "svcgate"): Logger {
  const min = ORDER[options.level ?? "info"];
  const encoder = new TextEncoder();
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const now = options.now ?? (() => new Date().toISOString());
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    if (options.format === "json") {
      const obj: Record<string, unknown> = { ts: now(), level, component, msg };
      for (const [k, v] of Object.entries(fields ?? {})) {
        obj[k] = v instanceof Error ? v.message : v;
      }
      write(JSON.stringify(obj));
      return;
    }
    const extra = Object.entries(fields ?? {}).map(([k, v]) => ` ${k}=${formatValue(v)}`).join("");
    write(`${now()} ${level.toUpperCase()} [${component}] ${msg}${extra}`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (c) => createLogger(options, c),
  };
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
