/**
 * Per-resource indexes of the Kubernetes source: each keeps, per object, the resourceVersion last
 * seen and what the store holds for it, parses objects as they arrive (objects/), and turns watch
 * events and relists into the smallest store writes. Only the slim model is kept; the raw object
 * is dropped.
 * @module
 */

import type { ModelStore } from "../../model/store.ts";
import type { EndpointSet, Service } from "../../model/types.ts";
import { parseEndpoints } from "../objects/endpoints.ts";
import { parseEndpointSlice } from "../objects/endpoint_slice.ts";
import { parseNamespace } from "../objects/namespace.ts";
import { parseService } from "../objects/service.ts";
import type { ParseOptions, ValidationError } from "../objects/validate.ts";
import type { ResourceHandler } from "./reflector.ts";

/** The resources the source lists and watches. */
export type ResourceKey = "services" | "endpointslices" | "endpoints" | "namespaces";

/** The namespace, name and resourceVersion of a raw object, or null when unreadable. */
function identity(obj: unknown): { namespace: string; name: string; rv: string } | null {
  const meta = (obj as { metadata?: Record<string, unknown> } | null)?.metadata;
  if (!meta || typeof meta.name !== "string" || meta.name === "") return null;
  const namespace = typeof meta.namespace === "string" && meta.namespace !== ""
    ? meta.namespace
    : "";
  const rv = typeof meta.resourceVersion === "string" ? meta.resourceVersion : "";
  return { namespace, name: meta.name, rv };
}

/** Shared by the handlers: where they write and how they report. */
export interface HandlerContext {
  readonly store: () => ModelStore;
  readonly changed: () => void;
  readonly invalid: (resource: ResourceKey, errors: ValidationError[]) => void;
  readonly warn: (resource: ResourceKey, errors: ValidationError[]) => void;
  /** Passed to the object parsers (keepPodNames for `--endpoint-pod-names`). */
  readonly parseOptions?: ParseOptions;
}

function where(kind: string, id: { namespace: string; name: string; rv: string }): string {
  const name = id.namespace ? `${id.namespace}/${id.name}` : id.name;
  return `API ${kind} ${name} (resourceVersion ${id.rv || "?"})`;
}

/**
 * Keeps, per object key, the resourceVersion last seen and what the store holds for it, and
 * turns events and relists into store writes. Subclasses say how to parse and write.
 */
export abstract class Index<T> implements ResourceHandler {
  /** key -> resourceVersion last seen, and the value in the store (absent when never valid). */
  protected readonly seen = new Map<string, { rv: string; value?: T }>();
  #listing = false;
  #size = 0;

  constructor(protected readonly ctx: HandlerContext, readonly resource: ResourceKey) {}

  /** Number of objects whose valid version is in the store. */
  get size(): number {
    return this.#size;
  }

  protected abstract parse(obj: unknown, id: { namespace: string; name: string; rv: string }): {
    value?: T;
    errors: ValidationError[];
  };
  protected abstract write(prev: T | undefined, next: T): void;
  protected abstract erase(prev: T): void;
  /** Called once after a batch of changes (a relist), or after each event. */
  protected flush(): void {}

  #key(id: { namespace: string; name: string }): string {
    return id.namespace ? `${id.namespace}/${id.name}` : id.name;
  }

  upsert(obj: unknown): void {
    const id = identity(obj);
    if (!id) {
      this.ctx.invalid(this.resource, [{
        where: `API ${this.resource}`,
        path: "metadata.name",
        message: "missing; the object is ignored",
      }]);
      return;
    }
    const key = this.#key(id);
    const prev = this.seen.get(key);
    if (prev && id.rv !== "" && prev.rv === id.rv) return; // Same version: nothing to do.
    const { value, errors } = this.parse(obj, id);
    if (value === undefined) {
      // Keep serving the last good version; remember this version so a relist does not
      // report it again.
      this.ctx.invalid(this.resource, errors);
      this.seen.set(key, { rv: id.rv, value: prev?.value });
      return;
    }
    if (errors.length > 0) this.ctx.warn(this.resource, errors);
    this.seen.set(key, { rv: id.rv, value });
    if (prev?.value === undefined) this.#size++;
    this.write(prev?.value, value);
    if (!this.#listing) this.#changed();
  }

  remove(obj: unknown): void {
    const id = identity(obj);
    if (!id) return;
    const key = this.#key(id);
    const prev = this.seen.get(key);
    if (!prev) return;
    this.seen.delete(key);
    if (prev.value !== undefined) {
      this.#size--;
      this.erase(prev.value);
      if (!this.#listing) this.#changed();
    }
  }

  beginList() {
    const listed = new Set<string>();
    this.#listing = true;
    return {
      add: (obj: unknown) => {
        const id = identity(obj);
        if (id) listed.add(this.#key(id));
        this.upsert(obj);
      },
      commit: () => {
        // Deleting the current entry while iterating a Map is safe: no copy of 20,000 entries.
        for (const [key, s] of this.seen) {
          if (listed.has(key)) continue;
          this.seen.delete(key);
          if (s.value !== undefined) {
            this.#size--;
            this.erase(s.value);
          }
        }
        this.#listing = false;
        this.#changed();
      },
    };
  }

  #changed(): void {
    this.flush();
    this.ctx.changed();
  }
}

export class ServiceIndex extends Index<Service> {
  protected parse(obj: unknown, id: { namespace: string; name: string; rv: string }) {
    return parseService(obj, where("Service", id));
  }
  protected write(_prev: Service | undefined, next: Service): void {
    this.ctx.store().setService(next);
  }
  protected erase(prev: Service): void {
    this.ctx.store().deleteService(prev.namespace, prev.name);
  }
}

export class SliceIndex extends Index<EndpointSet> {
  protected parse(obj: unknown, id: { namespace: string; name: string; rv: string }) {
    return parseEndpointSlice(obj, where("EndpointSlice", id), this.ctx.parseOptions);
  }
  protected write(prev: EndpointSet | undefined, next: EndpointSet): void {
    // A slice relabelled to another service leaves the first one.
    if (prev && (prev.serviceName !== next.serviceName || prev.id !== next.id)) this.erase(prev);
    this.ctx.store().setEndpointSet(next);
  }
  protected erase(prev: EndpointSet): void {
    this.ctx.store().deleteEndpointSet(prev.namespace, prev.serviceName, prev.id);
  }
}

export class EndpointsIndex extends Index<readonly EndpointSet[]> {
  protected parse(obj: unknown, id: { namespace: string; name: string; rv: string }) {
    return parseEndpoints(obj, where("Endpoints", id), this.ctx.parseOptions);
  }
  protected write(prev: readonly EndpointSet[] | undefined, next: readonly EndpointSet[]): void {
    const keep = new Set(next.map((s) => `${s.serviceName}\n${s.id}`));
    for (const s of prev ?? []) {
      if (!keep.has(`${s.serviceName}\n${s.id}`)) {
        this.ctx.store().deleteEndpointSet(s.namespace, s.serviceName, s.id);
      }
    }
    for (const s of next) this.ctx.store().setEndpointSet(s);
  }
  protected erase(prev: readonly EndpointSet[]): void {
    for (const s of prev) this.ctx.store().deleteEndpointSet(s.namespace, s.serviceName, s.id);
  }
}

export class NamespaceIndex extends Index<string> {
  #dirty = false;
  protected parse(obj: unknown, id: { namespace: string; name: string; rv: string }) {
    return parseNamespace(obj, where("Namespace", id));
  }
  protected write(): void {
    this.#dirty = true;
  }
  protected erase(): void {
    this.#dirty = true;
  }
  protected override flush(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    const names: string[] = [];
    for (const s of this.seen.values()) if (s.value !== undefined) names.push(s.value);
    this.ctx.store().setNamespaces(names);
  }
}
