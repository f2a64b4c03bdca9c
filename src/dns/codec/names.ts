/**
 * Domain names: presentation text <-> labels and wire bytes, validity, and the canonical lookup
 * key (ASCII lower case, RFC 4343). Pure.
 * @module
 */

/** Escapes one label's bytes to presentation text. */
export function labelText(buf: Uint8Array, start: number, len: number): string {
  let s = "";
  for (let i = start; i < start + len; i++) {
    const c = buf[i];
    if (c === 0x2e || c === 0x5c) s += "\\" + String.fromCharCode(c);
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += "\\" + String(c).padStart(3, "0");
  }
  return s;
}

/**
 * Splits a presentation name into label byte arrays. Returns an error string when a label is
 * empty or longer than 63 bytes, the name is longer than 255 bytes on the wire, or an escape is
 * bad.
 */
export function nameToLabels(name: string): Uint8Array[] | string {
  if (name === "" || name === ".") return [];
  if (name.indexOf("\\") < 0) {
    // No escapes (nearly every name): split on dots, one byte per character.
    const text = name.endsWith(".") ? name.slice(0, -1) : name;
    if (plainNameProblem(text) === null) {
      const out: Uint8Array[] = [];
      let pos = 0;
      for (;;) {
        let end = text.indexOf(".", pos);
        if (end < 0) end = text.length;
        const label = new Uint8Array(end - pos);
        for (let i = pos; i < end; i++) label[i - pos] = text.charCodeAt(i);
        out.push(label);
        if (end === text.length) return out;
        pos = end + 1;
      }
    }
  }
  const text = name.endsWith(".") && !name.endsWith("\\.") ? name.slice(0, -1) : name;
  const labels: Uint8Array[] = [];
  let cur: number[] = [];
  let total = 1;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x5c) {
      const next = text.charCodeAt(i + 1);
      if (Number.isNaN(next)) return `Cannot encode name "${name}": it ends with a lone "\\"`;
      if (next >= 0x30 && next <= 0x39) {
        const digits = text.slice(i + 1, i + 4);
        if (!/^\d{3}$/.test(digits) || Number(digits) > 255) {
          return `Cannot encode name "${name}": escape "\\${digits}" is not \\DDD (000-255)`;
        }
        cur.push(Number(digits));
        i += 3;
      } else {
        cur.push(next);
        i += 1;
      }
      continue;
    }
    if (ch === 0x2e) {
      if (cur.length === 0) return `Cannot encode name "${name}": it has an empty label`;
      labels.push(Uint8Array.from(cur));
      total += cur.length + 1;
      cur = [];
      continue;
    }
    if (ch > 0xff) return `Cannot encode name "${name}": character "${text[i]}" is not a byte`;
    cur.push(ch);
  }
  if (cur.length === 0) return `Cannot encode name "${name}": it has an empty label`;
  labels.push(Uint8Array.from(cur));
  total += cur.length + 1;
  for (const l of labels) {
    if (l.length > 63) return `Cannot encode name "${name}": a label is longer than 63 bytes`;
  }
  if (total > 255) return `Cannot encode name "${name}": it is longer than 255 bytes`;
  return labels;
}

/** Null when an escape-free name text (no trailing dot) is valid, else a short reason. */
export function plainNameProblem(text: string): string | null {
  if (text.length > 253) return "too long";
  let labelStart = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e;
    if (c > 0xff) return "not a byte";
    if (c === 0x2e) {
      const len = i - labelStart;
      if (len === 0 || len > 63) return "bad label";
      labelStart = i + 1;
    }
  }
  return null;
}

/** True when a presentation name can be encoded (cheaper than {@link nameToLabels}). */
export function isValidName(name: string): boolean {
  if (name === "" || name === ".") return true;
  if (name.indexOf("\\") < 0) {
    return plainNameProblem(name.endsWith(".") ? name.slice(0, -1) : name) === null;
  }
  return typeof nameToLabels(name) !== "string";
}

/** The uncompressed wire form of a name, or null when it cannot be encoded. */
export function nameToWire(name: string): Uint8Array | null {
  if (name !== "" && name !== "." && name.indexOf("\\") < 0) {
    const text = name.endsWith(".") ? name.slice(0, -1) : name;
    if (plainNameProblem(text) !== null) return null;
    // One allocation: small typed arrays are expensive in V8.
    const out = new Uint8Array(text.length + 2);
    let o = 0, pos = 0;
    for (;;) {
      let end = text.indexOf(".", pos);
      if (end < 0) end = text.length;
      out[o++] = end - pos;
      for (let i = pos; i < end; i++) out[o++] = text.charCodeAt(i);
      if (end === text.length) return out;
      pos = end + 1;
    }
  }
  const labels = nameToLabels(name);
  if (typeof labels === "string") return null;
  let len = 1;
  for (const l of labels) len += l.length + 1;
  const out = new Uint8Array(len);
  let o = 0;
  for (const l of labels) {
    out[o++] = l.length;
    out.set(l, o);
    o += l.length;
  }
  return out;
}

/** Lower-cases ASCII letters only (DNS case-insensitivity, RFC 4343). */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** Canonical lookup key of a presentation name: ASCII lower case, no trailing dot. */
export function nameKey(name: string): string {
  const t = name.endsWith(".") && !name.endsWith("\\.") ? name.slice(0, -1) : name;
  return asciiLower(t);
}
