/**
 * Finds where JSON text stops being valid, with a stable message. JSON.parse reports positions
 * only for some errors and its wording changes between V8 versions; this scanner runs only after
 * JSON.parse has failed, so it never slows the valid path. Pure.
 * @module
 */

/** Where and why JSON text is invalid. */
export interface JsonSyntaxError {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
  readonly message: string;
}

class Stop {
  constructor(readonly pos: number, readonly message: string) {}
}

/**
 * Returns the first syntax error of `text`, or null when it is valid JSON.
 *
 * @example
 * ```ts
 * locateJsonError('{\n  "a": 1\n  "b": 2\n}');
 * // { line: 3, column: 3, message: 'expected "," or "}", found "\\""' }
 * ```
 */
export function locateJsonError(text: string): JsonSyntaxError | null {
  let i = 0;
  const found = (): string => i >= text.length ? "end of input" : JSON.stringify(text[i]);
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const expect = (what: string): never => {
    throw new Stop(i, `expected ${what}, found ${found()}`);
  };
  const literal = (word: string) => {
    if (text.startsWith(word, i) && !/^[A-Za-z0-9_]/.test(text.slice(i + word.length))) {
      i += word.length;
      return;
    }
    const token = /^[A-Za-z0-9_]+/.exec(text.slice(i, i + 40))?.[0] ?? text[i];
    throw new Stop(i, `unexpected ${JSON.stringify(token)}`);
  };
  const string = () => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) throw new Stop(i, "unterminated string, found end of input");
      const c = text[i];
      if (c === '"') {
        i++;
        return;
      }
      if (c.charCodeAt(0) < 0x20) {
        throw new Stop(
          i,
          `control character U+${
            c.charCodeAt(0).toString(16).padStart(4, "0").toUpperCase()
          } in a string (escape it)`,
        );
      }
      if (c === "\\") {
        const e = text[i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            throw new Stop(i, `invalid escape ${JSON.stringify(text.slice(i, i + 6))}`);
          }
          i += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) {
          throw new Stop(i, `invalid escape ${JSON.stringify(text.slice(i, i + 2))}`);
        }
        i += 2;
        continue;
      }
      i++;
    }
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === "-" || m[0] === "") throw new Stop(i, `invalid number, found ${found()}`);
    i += m[0].length;
  };
  const value = (depth: number): void => {
    if (depth > 1000) throw new Stop(i, "nested too deeply");
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') expect("a property name in double quotes");
        string();
        ws();
        if (text[i] !== ":") expect('":"');
        i++;
        value(depth + 1);
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return;
        }
        expect('"," or "}"');
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return;
        }
        expect('"," or "]"');
      }
    }
    if (c === '"') return string();
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return number();
    if (c === "t") return literal("true");
    if (c === "f") return literal("false");
    if (c === "n") return literal("null");
    if (c !== undefined && /[A-Za-z_]/.test(c)) {
      const token = /^[A-Za-z0-9_]+/.exec(text.slice(i, i + 40))![0];
      throw new Stop(i, `unexpected ${JSON.stringify(token)} (strings need double quotes)`);
    }
    expect("a value");
  };
  try {
    value(0);
    ws();
    if (i < text.length) throw new Stop(i, `unexpected ${found()} after the end of the value`);
    return null;
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    const before = text.slice(0, e.pos);
    const line = before.split("\n").length;
    const column = e.pos - before.lastIndexOf("\n");
    return { line, column, message: e.message };
  }
}
