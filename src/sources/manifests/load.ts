/**
 * Turns manifest file texts (multi-document YAML, or JSON, either possibly a `kind: List`) into
 * the model, reporting every problem with its file, document number, field path and value.
 *
 * Pure: callers hand in texts (see read.ts for the file system edge).
 * @module
 */

import { buildServiceEntry } from "../../model/snapshot.ts";
import type { EndpointSet, Service } from "../../model/types.ts";
import { compareText } from "../../model/text.ts";
import type { ParsedObject } from "../objects/parse_object.ts";
import { formatError, isWarning, type ValidationError } from "../objects/validate.ts";
import { DEFAULT_MANIFEST_LIMITS, type ManifestLimits, parseManifestFile } from "./parse_file.ts";

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

/**
 * The last answer of {@link givesBackends} per endpoint set: a reload keeps the objects of the
 * files that did not change, so it resolves only the pairs that did (resolving all 10,000 took
 * ~60% of a reload at 10,000 services, tests/bench/standalone_bench.ts).
 */
const lastBackendCheck = new WeakMap<EndpointSet, { service: Service; gives: boolean }>();

/** Whether an endpoint set gives a service backends, by the model's own port resolution. */
function givesBackends(service: Service, set: EndpointSet): boolean {
  const last = lastBackendCheck.get(set);
  if (last?.service === service) return last.gives;
  // The model decides, so this warning can never disagree with what is programmed.
  const gives = buildServiceEntry(service, [set]).ports.some((port) => port.backends.length > 0);
  lastBackendCheck.set(set, { service, gives });
  return gives;
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
      if (set.endpoints.length === 0 || givesBackends(service, set)) return;
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
export function loadManifestTexts(
  files: readonly ManifestText[],
  limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS,
): ManifestLoad {
  return assembleManifests(files.map((f) => parseManifestFile(f, limits)));
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
