/**
 * Label and field selectors as the Kubernetes API server parses them (the subset svcgate's
 * tests need: equality, inequality, existence and set-based label requirements; the
 * metadata.name and metadata.namespace fields). Pure.
 * @module
 */

/** A parsed selector: true when an object's labels or fields satisfy every requirement. */
export type Matcher = (values: Readonly<Record<string, string>>) => boolean;

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** Splits on commas that are not inside parentheses. */
function splitRequirements(text: string): string[] {
  const parts: string[] = [];
  let depth = 0, start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")") depth--;
    else if (text[i] === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

function checkKey(key: string, where: string): void {
  if (!LABEL_KEY.test(key)) throw new Error(`Cannot parse ${where}: invalid label key "${key}"`);
}

function checkValue(value: string, where: string): void {
  if (!LABEL_VALUE.test(value)) {
    throw new Error(`Cannot parse ${where}: invalid label value "${value}"`);
  }
}

/**
 * Parses a label selector (`app=web,tier!=db,env in (a,b),!legacy`).
 * Throws an Error naming the bad part.
 *
 * @example
 * ```ts
 * parseLabelSelector("app=web")({ app: "web" }); // true
 * ```
 */
export function parseLabelSelector(text: string): Matcher {
  const where = `labelSelector "${text}"`;
  const reqs: Matcher[] = [];
  for (const part of splitRequirements(text)) {
    let m: RegExpMatchArray | null;
    if ((m = part.match(/^(\S+)\s+(in|notin)\s+\((.*)\)$/))) {
      const [, key, op, list] = m;
      checkKey(key, where);
      const values = new Set(list.split(",").map((v) => v.trim()));
      for (const v of values) checkValue(v, where);
      reqs.push(
        op === "in"
          ? (l) => key in l && values.has(l[key])
          : (l) => !(key in l) || !values.has(l[key]),
      );
    } else if ((m = part.match(/^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/))) {
      const [, key, op, value] = m;
      checkKey(key, where);
      checkValue(value, where);
      reqs.push(op === "!=" ? (l) => l[key] !== value : (l) => key in l && l[key] === value);
    } else if ((m = part.match(/^!\s*(\S+)$/))) {
      const key = m[1];
      checkKey(key, where);
      reqs.push((l) => !(key in l));
    } else if (LABEL_KEY.test(part)) {
      reqs.push((l) => part in l);
    } else {
      throw new Error(`Cannot parse ${where}: requirement "${part}" is not valid`);
    }
  }
  return (l) => reqs.every((r) => r(l));
}

/**
 * Parses a field selector (`metadata.name=web,metadata.namespace!=kube-system`) against the
 * fields a resource supports. Throws like the API server does for an unsupported field.
 *
 * @example
 * ```ts
 * parseFieldSelector("metadata.name=web", ["metadata.name"])({ "metadata.name": "web" }); // true
 * ```
 */
export function parseFieldSelector(text: string, supported: readonly string[]): Matcher {
  const reqs: Matcher[] = [];
  for (const part of splitRequirements(text)) {
    const m = part.match(/^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/);
    if (!m) {
      throw new Error(`Cannot parse fieldSelector "${text}": requirement "${part}" is not valid`);
    }
    const [, field, op, value] = m;
    if (!supported.includes(field)) {
      throw new Error(`field label not supported: ${field}`);
    }
    reqs.push(op === "!=" ? (f) => f[field] !== value : (f) => f[field] === value);
  }
  return (f) => reqs.every((r) => r(f));
}
