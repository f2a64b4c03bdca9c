/**
 * Parses one manifest file's text (multi-document YAML, or JSON, either possibly a `kind: List`)
 * within the bounds of {@link ManifestLimits}. The bounds are checked by scans before any parse
 * (nesting, documents, tokens per document), so that no hostile file reaches the yaml library's
 * parse tree (~200-400 bytes per token); YAML is then parsed one document at a time, and the
 * work comes in steps a caller can interleave with other work ({@link parseManifestFileSliced}).
 * Pure: the caller hands in the text and, to slice, how to pause. Measured reasons: ../README.md.
 * @module
 */

import YAML from "yaml";
import { parseObject, rawObjectId } from "../objects/parse_object.ts";
import { isWarning, type ParseOptions, type ValidationError } from "../objects/validate.ts";
import { DEFAULT_OBJECT_LIMITS, type ObjectLimits } from "../objects/limits.ts";
import { locateJsonError } from "./json_locate.ts";
import type { ManifestFile, ManifestObject, ManifestText } from "./load.ts";

const YAML_OPTIONS = { merge: true, uniqueKeys: true } as const;

/**
 * How many aliases a document may resolve, weighted by what each expands to: the yaml library's
 * defence against "billion laughs" documents (its default, stated here so that a change of
 * default cannot drop it; see load_test.ts).
 */
const MAX_ALIAS_COUNT = 100;

/** Bounds on one manifest file; each rejection names the file, the document and the limit. */
export interface ManifestLimits {
  /** Largest file read, in bytes (`--manifest-max-file-size`); a larger file is not read. */
  readonly fileBytes: number;
  /** Most documents in one file, each item of a List counted (`--manifest-max-documents`). */
  readonly documents: number;
  /**
   * Deepest flow nesting, `[` and `{` (`--manifest-max-depth`). Kubernetes objects nest about 10
   * deep; the bound is checked before parsing, so a hostile file of 100,000 `[` costs a scan,
   * not a parse tree of hundreds of MB or a stack overflow.
   */
  readonly depth: number;
  /**
   * Most tokens (scalars, punctuation, spaces, line ends) in one document
   * (`--manifest-max-document-tokens`): what the parse of a document costs, in memory and time,
   * grows with them, whatever the bytes. Counted by a lexer pass before the parse.
   */
  readonly documentTokens: number;
  /** Bounds on the lists inside one object. */
  readonly objects: ObjectLimits;
}

/** What the object parsers of a manifest file are told beyond limits (`--endpoint-pod-names`). */
export type ManifestParseOptions = Pick<ParseOptions, "keepPodNames">;

/** The defaults of the `--manifest-max-*` flags and of objects/limits.ts. */
export const DEFAULT_MANIFEST_LIMITS: ManifestLimits = {
  fileBytes: 16 * 2 ** 20,
  documents: 50_000,
  depth: 100,
  documentTokens: 150_000,
  objects: DEFAULT_OBJECT_LIMITS,
};

/**
 * Work between two pauses of a sliced parse, each a few ms here: lexemes (~2.5 µs each through the
 * yaml library's parser), objects validated (~20-50 µs), characters scanned (~20 ns).
 */
const STEP_LEXEMES = 1000;
const STEP_OBJECTS = 100;
const STEP_CHARS = 1 << 18;

/** Runs a stepped computation to its end, without pausing. */
function run<T>(steps: Generator<void, T>): T {
  let r = steps.next();
  while (!r.done) r = steps.next();
  return r.value;
}

/** True when a lexeme starts a YAML document: DOCUMENT (bare), or `---` not right after one. */
function startsDocument(lexeme: string, last: string): boolean {
  return lexeme === YAML.CST.DOCUMENT || (lexeme === "---" && last !== YAML.CST.DOCUMENT);
}

/** True for paths parsed as JSON rather than YAML. */
export function isJsonPath(path: string): boolean {
  return path.toLowerCase().endsWith(".json");
}

function isListObject(v: unknown): v is { kind: string; items?: unknown } {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    typeof (v as { kind?: unknown }).kind === "string" &&
    (v as { kind: string }).kind.endsWith("List");
}

/** The first line of a yaml library message, without its " at line L, column C" suffix. */
function yamlMessage(message: string): string {
  return message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
}

/** Collects one file's objects and problems. */
class FileBuilder {
  readonly objects: ManifestObject[] = [];
  readonly errors: ValidationError[] = [];
  readonly rejected: string[] = [];
  broken = false;
  /** Set when a limit refuses the whole file: it is not loaded at all. */
  refused: ValidationError | null = null;
  /** YAML documents the parser has started: the one being read when a parse fails. */
  started = 0;
  #counted = 0;
  constructor(
    readonly path: string,
    readonly limits: ManifestLimits,
    /** Passed to the object parsers (keepPodNames for `--endpoint-pod-names`). */
    readonly options: ManifestParseOptions = {},
  ) {}

  /** Parses one document's value: an object, or a List of objects. */
  *addDocument(value: unknown, document: number): Generator<void> {
    const where = `${this.path}#${document}`;
    if (value === null || value === undefined) return; // an empty document
    if (isListObject(value)) {
      const items = value.items;
      if (items === undefined || items === null) return;
      if (!Array.isArray(items)) {
        this.errors.push({ where, path: "items", message: `expected a list, got ${show(items)}` });
        return;
      }
      if (!this.#count(document, items.length)) return;
      for (let i = 0; i < items.length; i++) {
        this.#addObject(items[i], where, document, i);
        if (i % STEP_OBJECTS === STEP_OBJECTS - 1) yield;
      }
      return;
    }
    if (!this.#count(document, 1)) return;
    this.#addObject(value, where, document, undefined);
  }

  /** Counts objects against the documents limit; false (and the file refused) past it. */
  #count(document: number, n: number): boolean {
    this.#counted += n;
    if (this.#counted <= this.limits.documents) return true;
    this.refuse(document, tooManyDocuments(this.limits));
    return false;
  }

  refuse(document: number, message: string): void {
    this.broken = true;
    this.refused = { where: `${this.path}#${document}`, path: "", message };
  }

  #addObject(obj: unknown, where: string, document: number, item: number | undefined): void {
    const result = parseObject(obj, where, {
      ...this.options,
      warnUnknownFields: true,
      limits: this.limits.objects,
    });
    const prefix = item === undefined ? "" : `items[${item}]`;
    for (const e of result.errors) {
      this.errors.push(
        prefix ? { ...e, path: e.path ? `${prefix}.${e.path}` : prefix } : e,
      );
    }
    if (result.value) {
      this.objects.push({
        id: result.value.id,
        where,
        file: this.path,
        document,
        ...(item !== undefined ? { item } : {}),
        parsed: result.value,
      });
    } else if (result.errors.some((e) => !isWarning(e))) {
      const id = rawObjectId(obj);
      if (id !== undefined) this.rejected.push(id);
    }
  }

  syntaxError(document: number, format: string, line: number, column: number, message: string) {
    this.broken = true;
    this.errors.push({
      where: `${this.path}#${document}`,
      path: "",
      message: `cannot parse ${format} at line ${line}, column ${column}: ${message}`,
    });
  }

  build(): ManifestFile {
    const refused = this.refused;
    return {
      path: this.path,
      objects: refused ? [] : this.objects,
      errors: refused ? [refused] : this.errors,
      rejected: refused ? [] : this.rejected,
      broken: this.broken,
      kept: [],
    };
  }
}

function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 76)}...${text.slice(-1)}` : text;
}

function tooManyDocuments(limits: ManifestLimits): string {
  return `more than ${limits.documents} documents (the limit, --manifest-max-documents; each ` +
    "item of a List counts); the file is not loaded";
}

function tooManyTokens(limits: ManifestLimits, format: string): string {
  return `more than ${limits.documentTokens} ${format} tokens in one document (the limit, ` +
    "--manifest-max-document-tokens); the file is not loaded";
}

/**
 * Where flow nesting first goes deeper than `limit` ({line, column}, 1-based), or null. Skips
 * quoted strings and YAML comments; plain scalars holding a bracket count too, which can only
 * make the bound trip earlier on a file that was near it anyway.
 */
export function findDeepNesting(
  text: string,
  limit: number,
): { line: number; column: number } | null {
  return run(nestingSteps(text, limit));
}

function* nestingSteps(
  text: string,
  limit: number,
): Generator<void, { line: number; column: number } | null> {
  let depth = 0, line = 1, lineStart = 0, nextPause = STEP_CHARS;
  // A quote opens a string only where a scalar starts (not in `don't` or `say"hi"`).
  const startsScalar = (i: number) => i === 0 || /[\s[{,:]/.test(text[i - 1]);
  for (let i = 0; i < text.length; i++) {
    if (i >= nextPause) {
      nextPause += STEP_CHARS;
      yield;
    }
    const c = text[i];
    if (c === "\n") {
      line++;
      lineStart = i + 1;
    } else if (c === "[" || c === "{") {
      if (++depth > limit) return { line, column: i - lineStart + 1 };
    } else if (c === "]" || c === "}") {
      if (depth > 0) depth--;
    } else if ((c === '"' || c === "'") && startsScalar(i)) {
      // "..." has backslash escapes; '...' (YAML) has '' for a quote inside.
      for (i++; i < text.length; i++) {
        const q = text[i];
        if (q === "\n") {
          line++;
          lineStart = i + 1;
        } else if (c === '"' && q === "\\") i++;
        else if (q === c) {
          if (c === "'" && text[i + 1] === "'") i++;
          else break;
        }
      }
    } else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]))) {
      // A YAML comment runs to the end of the line.
      while (i + 1 < text.length && text[i + 1] !== "\n") i++;
    }
  }
  return null;
}

/**
 * Where the document past `limit` starts, counting the `---` lines of a YAML text (at the start
 * of a line, `---` always starts a document), or null: a scan, so that a file of 100,000
 * documents is refused without parsing one of them.
 */
export function findDocumentPastLimit(
  text: string,
  limit: number,
): { document: number; line: number } | null {
  return run(documentSteps(text, limit));
}

function* documentSteps(
  text: string,
  limit: number,
): Generator<void, { document: number; line: number } | null> {
  let documents = 0, line = 1, sawMarker = false, bare = false, nextPause = STEP_CHARS;
  for (let start = 0; start < text.length; line++) {
    if (start >= nextPause) {
      nextPause += STEP_CHARS;
      yield;
    }
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const next = text[start + 3];
    if (
      text.startsWith("---", start) &&
      (start + 3 === end || next === " " || next === "\t" || next === "\r")
    ) {
      if (!sawMarker && bare) documents++; // the document before the first marker
      sawMarker = true;
      if (++documents > limit) return { document: documents, line };
    } else if (!sawMarker && !bare) {
      // Content (not a blank line, comment or directive) before any marker is a document too.
      const first = text.slice(start, end).trimStart()[0];
      bare = first !== undefined && first !== "#" && first !== "%" && first !== "\r";
    }
    start = end + 1;
  }
  return null;
}

/** The first YAML document of more than `limit` lexemes, or null: the yaml library's lexer only. */
function* yamlTokenSteps(text: string, limit: number): Generator<void, number | null> {
  let document = 0, tokens = 0, last = "", n = 0;
  for (const lexeme of new YAML.Lexer().lex(text)) {
    if (startsDocument(lexeme, last)) {
      document++;
      tokens = 0;
    }
    last = lexeme;
    if (++tokens > limit) return Math.max(1, document);
    if (++n % STEP_LEXEMES === 0) yield;
  }
  return null;
}

/** True when a JSON text has more than `limit` tokens (`{ [ , :` outside strings, and values). */
function* jsonTokenSteps(text: string, limit: number): Generator<void, boolean> {
  let tokens = 0, nextPause = STEP_CHARS;
  for (let i = 0; i < text.length; i++) {
    if (i >= nextPause) {
      nextPause += STEP_CHARS;
      yield;
    }
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
      tokens++;
    } else if (c === "{" || c === "[" || c === "," || c === ":") tokens += 2;
    if (tokens > limit) return true;
  }
  return false;
}

/**
 * The steps of parsing one file into `b`: the nesting, document and token bounds (scans), then
 * JSON, or YAML document by document, lexeme by lexeme.
 */
function* parseSteps(b: FileBuilder, file: ManifestText): Generator<void> {
  const format = isJsonPath(file.path) ? "JSON" : "YAML";
  const deep = yield* nestingSteps(file.text, b.limits.depth);
  if (deep) {
    b.syntaxError(
      1,
      format,
      deep.line,
      deep.column,
      `nested deeper than ${b.limits.depth} levels (the limit, --manifest-max-depth); ` +
        "the file is not loaded",
    );
    return;
  }
  if (format === "JSON") {
    if (yield* jsonTokenSteps(file.text, b.limits.documentTokens)) {
      b.refuse(1, tooManyTokens(b.limits, "JSON"));
      return;
    }
  } else {
    const past = yield* documentSteps(file.text, b.limits.documents);
    if (past) {
      b.refuse(past.document, tooManyDocuments(b.limits));
      return;
    }
    const big = yield* yamlTokenSteps(file.text, b.limits.documentTokens);
    if (big !== null) {
      b.refuse(big, tooManyTokens(b.limits, "YAML"));
      return;
    }
  }
  try {
    if (format === "JSON") yield* parseJson(b, file);
    else yield* parseYaml(b, file);
  } catch (e) {
    // A parser or validator that fails on this input (block nesting deep enough to exhaust the
    // stack, say) fails this file alone: it is reported broken, never the whole load.
    const message = e instanceof RangeError
      ? `nested too deeply to parse (${e.message})`
      : e instanceof Error
      ? e.message
      : String(e);
    b.syntaxError(Math.max(1, b.started), format, 1, 1, message);
  }
}

function* parseJson(b: FileBuilder, file: ManifestText): Generator<void> {
  if (file.text.trim() === "") return;
  let value: unknown;
  try {
    value = JSON.parse(file.text);
  } catch (e) {
    const loc = locateJsonError(file.text);
    if (loc) b.syntaxError(1, "JSON", loc.line, loc.column, loc.message);
    else b.syntaxError(1, "JSON", 1, 1, (e as Error).message);
    return;
  }
  yield* b.addDocument(value, 1);
}

/**
 * Parses YAML into `b` one document at a time (what YAML.parseAllDocuments does, with the lexer,
 * parser and composer driven here): a document is converted and validated as soon as the
 * composer has it, and a pause comes every {@link STEP_LEXEMES} lexemes.
 */
function* parseYaml(b: FileBuilder, file: ManifestText): Generator<void> {
  const lineCounter = new YAML.LineCounter();
  const parser = new YAML.Parser(lineCounter.addNewLine);
  const composer = new YAML.Composer(YAML_OPTIONS);
  lineCounter.addNewLine(0);
  let document = 0;
  const take = function* (doc: YAML.Document.Parsed): Generator<void> {
    document++;
    if (doc.errors.length > 0) {
      // The first error is the cause; the ones after it usually follow from it.
      const e = doc.errors[0];
      const pos = lineCounter.linePos(e.pos[0]);
      b.syntaxError(document, "YAML", pos.line, pos.col, yamlMessage(e.message));
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      const pos = lineCounter.linePos(doc.range[0]);
      b.syntaxError(document, "YAML", pos.line, pos.col, yamlMessage((e as Error).message));
      return;
    }
    yield* b.addDocument(value, document);
  };
  let last = "", n = 0;
  for (const lexeme of new YAML.Lexer().lex(file.text)) {
    if (startsDocument(lexeme, last)) b.started++;
    last = lexeme;
    for (const token of parser.next(lexeme)) {
      for (const doc of composer.next(token)) {
        yield* take(doc);
        if (b.refused) return;
      }
    }
    if (++n % STEP_LEXEMES === 0) yield;
  }
  for (const token of parser.end()) {
    for (const doc of composer.next(token)) {
      yield* take(doc);
      if (b.refused) return;
    }
  }
  for (const doc of composer.end()) {
    yield* take(doc);
    if (b.refused) return;
  }
}

/**
 * Parses one manifest file. YAML files may hold several documents (`---`); documents are numbered
 * from 1. A document with a syntax error is reported with its line and column and marks the file
 * broken; the file's other documents still load. A file past a limit of `limits` is broken with
 * one error naming the document and the limit, and nothing of it loads.
 *
 * @example
 * ```ts
 * const file = parseManifestFile({ path: "web.yaml", text: "kind: Service\napiVersion: v1\n..." });
 * file.objects.map((o) => o.id);
 * ```
 */
export function parseManifestFile(
  file: ManifestText,
  limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS,
  options: ManifestParseOptions = {},
): ManifestFile {
  const b = new FileBuilder(file.path, limits, options);
  run(parseSteps(b, file));
  return b.build();
}

/**
 * {@link parseManifestFile} in steps of about 5 ms, awaiting `pause()` between them, so that a
 * big file never holds the thread for long (the daemon's DNS may answer on it).
 *
 * @example
 * ```ts
 * const file = await parseManifestFileSliced({ path, text }, limits,
 *   () => new Promise((r) => setTimeout(r, 0)));
 * ```
 */
export async function parseManifestFileSliced(
  file: ManifestText,
  limits: ManifestLimits,
  pause: () => Promise<void>,
  options: ManifestParseOptions = {},
): Promise<ManifestFile> {
  const b = new FileBuilder(file.path, limits, options);
  for (const _ of parseSteps(b, file)) await pause();
  return b.build();
}

/**
 * {@link decodeManifestBytes} in steps of 256 KiB, awaiting `pause()` between them: the decoder
 * checks UTF-8 at ~10 ns a byte here, 70 ms for a 6.8 MB file in one call.
 */
export async function decodeManifestBytesSliced(
  bytes: Uint8Array,
  pause: () => Promise<void>,
): Promise<{ text: string } | { error: string }> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const step = 1 << 18;
  let text = "";
  try {
    for (let at = 0; at < bytes.length; at += step) {
      // stream: a character split between two steps is decoded whole in the second.
      text += decoder.decode(bytes.subarray(at, at + step), { stream: true });
      await pause();
    }
    text += decoder.decode();
  } catch {
    return { error: "it is not UTF-8 text" };
  }
  return { text };
}

/** The bytes of a file as UTF-8 text, or why they are not. */
export function decodeManifestBytes(bytes: Uint8Array): { text: string } | { error: string } {
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return { error: "it is not UTF-8 text" };
  }
}
