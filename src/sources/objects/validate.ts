/**
 * What every object parser shares: the problem type ({@link ValidationError}) and its one-line
 * form, and the field readers. Each reader reports into a {@link Ctx} (where the object came from,
 * the field path, the quoted value) and returns undefined when the field is absent or bad, so one
 * pass over an object finds every problem.
 *
 * Pure: no I/O.
 * @module
 */

import { canonicalIp, ipFamilyOf, type IpText } from "../../model/ip.ts";
import type { IpFamily, Protocol } from "../../model/types.ts";
import { EMPTY_LIST } from "../../model/types.ts";
import type { ObjectLimits } from "./limits.ts";

/** One problem found in an object. */
export interface ValidationError {
  /** Where the object came from, for example `services.yaml#3` (file and document number). */
  readonly where: string;
  /** Field path inside the object, for example `spec.ports[1].port`; "" for the whole object. */
  readonly path: string;
  /** What is wrong, quoting the value. */
  readonly message: string;
  /** Present for problems that do not reject the object (ignored kinds, unknown fields). */
  readonly severity?: "warning";
}

/** The outcome of parsing one object: a value when valid, and every problem found. */
export interface ParseResult<T> {
  readonly value?: T;
  readonly errors: ValidationError[];
}

/** Options shared by the parse functions. */
export interface ParseOptions {
  /**
   * Report fields svcgate does not know as warnings (typos such as `targetport` would otherwise
   * silently fall back to defaults). For hand-written manifests; off for objects from the API,
   * which may carry fields of newer Kubernetes versions.
   */
  readonly warnUnknownFields?: boolean;
  /** Bounds on the lists inside an object; {@link DEFAULT_OBJECT_LIMITS} when absent. */
  readonly limits?: ObjectLimits;
  /**
   * Keep the name of the Pod behind each endpoint (its targetRef): DNS names endpoints after
   * their pods with `--endpoint-pod-names`. Off, nothing of a targetRef is kept.
   */
  readonly keepPodNames?: boolean;
}

/**
 * Formats an error as one line: `where path: message`.
 *
 * @example
 * ```ts
 * formatError({ where: "services.yaml#3", path: "spec.ports[1].port", message: "70000 is not a port (1-65535)" });
 * // "services.yaml#3 spec.ports[1].port: 70000 is not a port (1-65535)"
 * ```
 */
export function formatError(e: ValidationError): string {
  const head = [e.where, e.path].filter((s) => s !== "").join(" ");
  return head ? `${head}: ${e.message}` : e.message;
}

/** True when the problem does not reject the object. */
export function isWarning(e: ValidationError): boolean {
  return e.severity === "warning";
}

/** True for a JSON object: not null, not a list. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The value as it appears in the error, always quoted as JSON and kept short. */
export function show(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > 80 ? `${text.slice(0, 76)}...${text.slice(-1)}` : text;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The path of a field or item below `path`: `a.b`, `a[0]`, `a["x/y"]`. */
export function child(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  if (!IDENT.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path ? `${path}.${key}` : key;
}

/** Collects the problems of one object: every reader reports into it. */
export class Ctx {
  readonly errors: ValidationError[] = [];
  constructor(readonly where: string, readonly options: ParseOptions) {}

  error(path: string, message: string): void {
    this.errors.push({ where: this.where, path, message });
  }

  warn(path: string, message: string): void {
    this.errors.push({ where: this.where, path, message, severity: "warning" });
  }

  get failed(): boolean {
    return this.failedSince(0);
  }

  /** True when an error (not a warning) was reported after the first `from` problems. */
  failedSince(from: number): boolean {
    for (let i = from; i < this.errors.length; i++) if (!isWarning(this.errors[i])) return true;
    return false;
  }

  /** Warns about fields outside `known`, when asked to. */
  unknownFields(obj: Record<string, unknown>, path: string, known: ReadonlySet<string>): void {
    if (!this.options.warnUnknownFields) return;
    for (const key of Object.keys(obj)) {
      if (!known.has(key)) this.warn(child(path, key), "unknown field, ignored");
    }
  }

  object(v: unknown, path: string): Record<string, unknown> | undefined {
    if (v === undefined || v === null) return undefined;
    if (!isPlainObject(v)) {
      this.error(path, `expected an object, got ${show(v)}`);
      return undefined;
    }
    return v;
  }

  array(v: unknown, path: string): unknown[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.error(path, `expected a list, got ${show(v)}`);
      return undefined;
    }
    return v;
  }

  string(v: unknown, path: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") {
      this.error(path, `${show(v)} is not a string`);
      return undefined;
    }
    return v;
  }

  boolean(v: unknown, path: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") {
      this.error(path, `${show(v)} is not a boolean (true or false)`);
      return undefined;
    }
    return v;
  }

  /** An integer port 1-65535. */
  port(v: unknown, path: string): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (!isPort(v)) {
      this.error(path, `${show(v)} is not a port (1-65535)`);
      return undefined;
    }
    return v;
  }

  /** One of `allowed`, or undefined (reported) when it is something else. */
  oneOf<T extends string>(
    v: unknown,
    path: string,
    allowed: readonly T[],
    what: string,
  ): T | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
      this.error(path, `${show(v)} is not ${what} (${allowed.join(", ")})`);
      return undefined;
    }
    return v as T;
  }

  protocol(v: unknown, path: string): Protocol {
    return this.oneOf(v, path, PROTOCOLS, "a protocol") ?? "TCP";
  }

  ip(v: unknown, path: string, family?: IpFamily): IpText | undefined {
    const text = this.string(v, path);
    if (text === undefined) return undefined;
    // Most addresses are canonical IPv4 already: one regex instead of a parse and a format.
    const fastV4 = CANONICAL_V4.test(text);
    const ip = fastV4 ? text as IpText : canonicalIp(text);
    if (ip === null) {
      this.error(path, `${show(text)} is not an IP address`);
      return undefined;
    }
    if (family !== undefined && ipFamilyOf(ip) !== family) {
      this.error(path, `${show(text)} is not an IPv${family} address`);
      return undefined;
    }
    return ip;
  }

  /** A list of IP addresses, canonicalized. */
  ipList(v: unknown, path: string): IpText[] {
    const items = this.array(v, path) ?? [];
    const out: IpText[] = [];
    items.forEach((item, i) => {
      const ip = this.ip(item, child(path, i));
      if (ip !== undefined && !out.includes(ip)) out.push(ip);
    });
    return out;
  }
}

const V4_OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const CANONICAL_V4 = new RegExp(`^${V4_OCTET}(\\.${V4_OCTET}){3}$`);

const PROTOCOLS: readonly Protocol[] = ["TCP", "UDP", "SCTP"];

/** An integer port number, 1-65535. */
export function isPort(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65535;
}

/**
 * The list, frozen, as an exact-size copy (a list grown by push() keeps spare room; see
 * ../README.md); the shared empty one when empty.
 */
export function frozenList<T>(list: readonly T[]): readonly T[] {
  return list.length === 0 ? EMPTY_LIST : Object.freeze(list.slice());
}
