/**
 * Turns manifest file texts (multi-document YAML, or JSON, either possibly a `kind: List`) into
 * the model, reporting every problem with its file, document number, field path and value.
 *
 * Pure: callers hand in texts (see read.ts for the file system edge).
 * @module
 */

import YAML from "yaml";
import { buildServiceEntry } from "../../model/snapshot.ts";
import type { EndpointSet, Service } from "../../model/types.ts";
import { compareText } from "../../model/text.ts";
import { type ParsedObject, parseObject, rawObjectId } from "../objects/parse_object.ts";
import {
  formatError,
  isWarning,
  type ParseOptions,
  type ValidationError,
} from "../objects/validate.ts";
import { locateJsonError } from "./json_locate.ts";

/** The text of one manifest file. */
export interface ManifestText {
  /** The path shown in errors, as the user gave it (for example `deploy/examples/web.yaml`). */
  readonly path: string;
  readonly text: string;
}

/** One accepted object and where it came from. */
export interface ManifestObject {
  /** Identity, for example `Service default/web`; unique across all files. */
  readonly id: string;
  /** File and document, for example `services.yaml#3`. */
  readonly where: string;
  /** File path. */
  readonly file: string;
  /** 1-based document number in the file. */
  readonly document: number;
  /** Index in the document's `items` when the document is a List. */
  readonly item?: number;
  readonly parsed: ParsedObject;
}

/** The result of parsing one file. */
export interface ManifestFile {
  readonly path: string;
  /** Accepted objects, in file order. */
  readonly objects: readonly ManifestObject[];
  /** Errors and warnings, in file order. */
  readonly errors: readonly ValidationError[];
  /** Ids of objects that were recognisable but invalid, and so rejected. */
  readonly rejected: readonly string[];
  /** True when the file could not be read or parsed: its content is not fully known. */
  readonly broken: boolean;
  /** Ids of objects served from an earlier good version of this file (see keepLastGood). */
  readonly kept: readonly string[];
}

/** Everything a set of manifests defines, ready for {@link ModelStore.replaceAll}. */
export interface ManifestState {
  readonly services: readonly Service[];
  readonly endpointSets: readonly EndpointSet[];
  /** Sorted; always includes `default`. */
  readonly namespaces: readonly string[];
  /**
   * True when a file has never been read or parsed successfully: the objects it holds are
   * unknown, not absent (see Snapshot.partial).
   */
  readonly partial?: boolean;
}

/** A loaded manifest set: the state, the accepted objects with their origin, every problem. */
export interface ManifestLoad extends ManifestState {
  readonly objects: readonly ManifestObject[];
  readonly errors: readonly ValidationError[];
}

const YAML_OPTIONS = { merge: true, uniqueKeys: true, prettyErrors: true } as const;

/**
 * Deepest flow nesting (`[` / `{`) a manifest may have. Kubernetes objects nest about 10 deep;
 * the bound is checked before parsing, so a hostile file of 100,000 `[` costs a scan, not a parse
 * tree of hundreds of MB or a stack overflow.
 */
export const MAX_NESTING_DEPTH = 100;

/**
 * Where flow nesting first goes deeper than `limit` ({line, column}, 1-based), or null. Skips
 * quoted strings and YAML comments; plain scalars holding a bracket count too, which can only
 * make the bound trip earlier on a file that was near it anyway.
 */
export function findDeepNesting(
  text: string,
  limit: number,
): { line: number; column: number } | null {
  let depth = 0, line = 1, lineStart = 0;
  // A quote opens a string only where a scalar starts (not in `don't` or `say"hi"`).
  const startsScalar = (i: number) => i === 0 || /[\s[{,:]/.test(text[i - 1]);
  for (let i = 0; i < text.length; i++) {
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

class FileBuilder {
  readonly objects: ManifestObject[] = [];
  readonly errors: ValidationError[] = [];
  readonly rejected: string[] = [];
  broken = false;
  constructor(readonly path: string, readonly options: ParseOptions = {}) {}

  /** Parses one document's value: an object, or a List of objects. */
  addDocument(value: unknown, document: number): void {
    const where = `${this.path}#${document}`;
    if (value === null || value === undefined) return; // an empty document
    if (isListObject(value)) {
      const items = value.items;
      if (items === undefined || items === null) return;
      if (!Array.isArray(items)) {
        this.errors.push({ where, path: "items", message: `expected a list, got ${show(items)}` });
        return;
      }
      items.forEach((item, i) => this.#addObject(item, where, document, i));
      return;
    }
    this.#addObject(value, where, document, undefined);
  }

  #addObject(obj: unknown, where: string, document: number, item: number | undefined): void {
    const result = parseObject(obj, where, { ...this.options, warnUnknownFields: true });
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
    return {
      path: this.path,
      objects: this.objects,
      errors: this.errors,
      rejected: this.rejected,
      broken: this.broken,
      kept: [],
    };
  }
}

function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 76)}...${text.slice(-1)}` : text;
}

/**
 * Parses one manifest file. YAML files may hold several documents (`---`); documents are numbered
 * from 1. A document with a syntax error is reported with its line and column and marks the file
 * broken; the file's other documents still load.
 *
 * @example
 * ```ts
 * const file = parseManifestFile({ path: "web.yaml", text: "kind: Service\napiVersion: v1\n..." });
 * file.objects.map((o) => o.id);
 * ```
 */
export function parseManifestFile(
  file: ManifestText,
  /** Passed to the object parsers (e.g. keepPodNames), with unknown fields warned about. */
  options: ParseOptions = {},
): ManifestFile {
  const format = isJsonPath(file.path) ? "JSON" : "YAML";
  const deep = findDeepNesting(file.text, MAX_NESTING_DEPTH);
  if (deep) {
    const b = new FileBuilder(file.path, options);
    b.syntaxError(
      1,
      format,
      deep.line,
      deep.column,
      `nested deeper than ${MAX_NESTING_DEPTH} levels (the limit); the file is not loaded`,
    );
    return b.build();
  }
  try {
    return parseText(file, options);
  } catch (e) {
    // A parser or validator that fails on this input (block nesting deep enough to exhaust the
    // stack, say) fails this file alone: it is reported broken, never the whole load.
    const b = new FileBuilder(file.path, options);
    const message = e instanceof RangeError
      ? `nested too deeply to parse (${e.message})`
      : e instanceof Error
      ? e.message
      : String(e);
    b.syntaxError(1, format, 1, 1, message);
    return b.build();
  }
}

function parseText(file: ManifestText, options: ParseOptions): ManifestFile {
  const b = new FileBuilder(file.path, options);
  if (isJsonPath(file.path)) {
    if (file.text.trim() === "") return b.build();
    let value: unknown;
    try {
      value = JSON.parse(file.text);
    } catch (e) {
      const loc = locateJsonError(file.text);
      if (loc) b.syntaxError(1, "JSON", loc.line, loc.column, loc.message);
      else b.syntaxError(1, "JSON", 1, 1, (e as Error).message);
      return b.build();
    }
    b.addDocument(value, 1);
    return b.build();
  }
  const lineCounter = new YAML.LineCounter();
  const docs = YAML.parseAllDocuments(file.text, { ...YAML_OPTIONS, lineCounter });
  docs.forEach((doc, i) => {
    const document = i + 1;
    if (doc.errors.length > 0) {
      // The first error is the cause; the ones after it usually follow from it.
      const e = doc.errors[0];
      const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
      b.syntaxError(document, "YAML", pos.line, pos.col, yamlMessage(e.message));
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      const pos = lineCounter.linePos(doc.range[0]);
      b.syntaxError(document, "YAML", pos.line, pos.col, yamlMessage((e as Error).message));
      return;
    }
    b.addDocument(value, document);
  });
  return b.build();
}

/** A file that could not be read: broken, with one error naming the file and the reason. */
export function unreadableManifestFile(path: string, reason: string): ManifestFile {
  return {
    path,
    objects: [],
    errors: [{ where: path, path: "", message: `cannot read the file: ${reason}` }],
    rejected: [],
    broken: true,
    kept: [],
  };
}

function sameParsed(a: ParsedObject, b: ParsedObject): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Combines a new version of a file with its last good version, so a bad edit never takes down
 * what was serving:
 * - a broken file (syntax or read error) keeps every object of the previous version;
 * - an object that became invalid keeps its previous version (matched by kind, namespace, name);
 * - an object equal to its previous version is the previous object itself, so the store sees no
 *   change for it.
 * Kept objects are listed in `kept` and announced by a warning.
 *
 * @example
 * ```ts
 * const serving = keepLastGood(previous, parseManifestFile({ path, text }));
 * ```
 */
export function keepLastGood(previous: ManifestFile | undefined, next: ManifestFile): ManifestFile {
  if (!previous) return next;
  if (next.broken) {
    const kept = previous.objects.map((o) => o.id);
    if (kept.length === 0) return next;
    return {
      ...next,
      objects: previous.objects,
      kept,
      errors: [...next.errors, {
        where: next.path,
        path: "",
        message: `serving the last good version of this file (${kept.length} ${
          kept.length === 1 ? "object" : "objects"
        })`,
        severity: "warning",
      }],
    };
  }
  const before = new Map(previous.objects.map((o) => [o.id, o]));
  const objects = next.objects.map((o) => {
    const old = before.get(o.id);
    return old && sameParsed(old.parsed, o.parsed) && old.where === o.where ? old : o;
  });
  const present = new Set(objects.map((o) => o.id));
  const kept: string[] = [];
  const notes: ValidationError[] = [];
  for (const id of next.rejected) {
    const old = before.get(id);
    if (!old || present.has(id)) continue;
    objects.push(old);
    present.add(id);
    kept.push(id);
    notes.push({
      where: old.where,
      path: "",
      message: `serving the last good version of ${id}`,
      severity: "warning",
    });
  }
  return { ...next, objects, kept, errors: [...next.errors, ...notes] };
}

/**
 * Assembles parsed files, in the order given, into one state. An object defined twice is an error
 * naming both places; the first definition wins. Endpoints that cannot serve their Service
 * (unknown Service, no matching port) load with a warning: they are probably typos.
 */
export function assembleManifests(files: readonly ManifestFile[]): ManifestLoad {
  const objects: ManifestObject[] = [];
  const errors: ValidationError[] = [];
  const seen = new Map<string, ManifestObject>();
  for (const file of files) {
    errors.push(...file.errors);
    for (const o of file.objects) {
      const first = seen.get(o.id);
      if (first) {
        errors.push({
          where: o.where,
          path: o.item === undefined ? "" : `items[${o.item}]`,
          message: `${o.id} is already defined at ${first.where}; this copy is ignored`,
        });
        continue;
      }
      seen.set(o.id, o);
      objects.push(o);
    }
  }
  const services: Service[] = [];
  const endpointSets: EndpointSet[] = [];
  const namespaces = new Set<string>(["default"]);
  for (const o of objects) {
    const p = o.parsed;
    switch (p.kind) {
      case "Service":
        services.push(p.service);
        namespaces.add(p.service.namespace);
        break;
      case "EndpointSlice":
        endpointSets.push(p.endpointSet);
        namespaces.add(p.endpointSet.namespace);
        break;
      case "Endpoints":
        endpointSets.push(...p.endpointSets);
        namespaces.add(p.namespace);
        break;
      case "Namespace":
        namespaces.add(p.namespace);
        break;
    }
  }
  errors.push(...crossCheck(objects, services));
  return {
    services,
    endpointSets,
    namespaces: [...namespaces].sort(compareText),
    objects,
    errors,
  };
}

function describePorts(ports: readonly { name: string; protocol: string; port: number }[]): string {
  if (ports.length === 0) return "no ports";
  return ports.map((p) => `${JSON.stringify(p.name)} ${p.port}/${p.protocol}`).join(", ");
}

/**
 * Warnings about objects that load but cannot do what they were surely meant to: endpoints of a
 * Service that no manifest defines (a typo in a name), and endpoint sets none of whose ports any
 * Service port resolves to (port names must match the Service's, as in Kubernetes).
 */
function crossCheck(
  objects: readonly ManifestObject[],
  services: readonly Service[],
): ValidationError[] {
  const byKey = new Map(services.map((s) => [`${s.namespace}/${s.name}`, s]));
  const out: ValidationError[] = [];
  for (const o of objects) {
    const p = o.parsed;
    if (p.kind !== "EndpointSlice" && p.kind !== "Endpoints") continue;
    const key = p.kind === "EndpointSlice"
      ? `${p.endpointSet.namespace}/${p.endpointSet.serviceName}`
      : `${p.namespace}/${p.name}`;
    const path = o.item === undefined ? "" : `items[${o.item}]`;
    const service = byKey.get(key);
    if (!service) {
      out.push({
        where: o.where,
        path,
        message: `${o.id} belongs to Service ${key}, which no manifest defines`,
        severity: "warning",
      });
      continue;
    }
    if (service.ports.length === 0) continue;
    const sets = p.kind === "EndpointSlice" ? [p.endpointSet] : p.endpointSets;
    sets.forEach((set, i) => {
      if (set.endpoints.length === 0) return;
      // The model's own resolution decides, so this warning can never disagree with it.
      const entry = buildServiceEntry(service, [set]);
      if (entry.ports.some((port) => port.backends.length > 0)) return;
      const setPath = p.kind === "Endpoints" ? `subsets[${i}]` : "";
      out.push({
        where: o.where,
        path: [path, setPath].filter(Boolean).join("."),
        message: `${o.id} gives Service ${key} no backends: no port matches a Service port ` +
          `by name and protocol (it has ${describePorts(set.ports)}; the Service has ${
            describePorts(service.ports)
          })`,
        severity: "warning",
      });
    });
  }
  return out;
}

/**
 * Loads manifest texts: parses each file and assembles them in the order given (sort paths first
 * for a stable result). One invalid object is rejected and reported; the others still load.
 *
 * @example
 * ```ts
 * const { services, endpointSets, namespaces, errors } = loadManifestTexts([
 *   { path: "services.yaml", text: await Deno.readTextFile("services.yaml") },
 * ]);
 * errors.map(formatError);
 * ```
 */
export function loadManifestTexts(files: readonly ManifestText[]): ManifestLoad {
  return assembleManifests(files.map((f) => parseManifestFile(f)));
}

/**
 * Formats the problems of a load, one line each, warnings marked, for CLI output.
 *
 * @example
 * ```ts
 * formatLoadErrors(load); // ["warning: web.yaml#2 kind: \"Deployment\" is not a kind svcgate reads ..."]
 * ```
 */
export function formatLoadErrors(load: Pick<ManifestLoad, "errors">): string[] {
  return load.errors.map((e) => `${isWarning(e) ? "warning: " : ""}${formatError(e)}`);
}
