/**
 * Converts raw Kubernetes objects (`v1 Service`, `v1 Endpoints`, `discovery.k8s.io/v1
 * EndpointSlice`, `v1 Namespace`), as decoded from YAML, JSON or the API, into the typed model,
 * validating every field svcgate uses. Shared by the manifest source and the Kubernetes source.
 *
 * Pure: no I/O. Every problem is reported as a {@link ValidationError} naming where the object came
 * from, the field path and the offending value; an object with any error yields no value.
 * @module
 */

import { canonicalIp, ipFamilyOf, parseCidr } from "../model/ip.ts";
import type {
  Endpoint,
  EndpointPort,
  EndpointSet,
  IpFamily,
  Protocol,
  Service,
  ServicePort,
  ServiceType,
  TrafficPolicy,
} from "../model/types.ts";
import { EMPTY_LIST, EMPTY_RECORD, SERVICE_NAME_LABEL } from "../model/types.ts";
import { endpointSet } from "../model/endpoint_set.ts";

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
}

/** A successfully parsed object of one of the kinds svcgate reads. */
export type ParsedObject =
  | { readonly kind: "Service"; readonly id: string; readonly service: Service }
  | { readonly kind: "EndpointSlice"; readonly id: string; readonly endpointSet: EndpointSet }
  | {
    readonly kind: "Endpoints";
    readonly id: string;
    readonly namespace: string;
    /** The Endpoints name, which is the name of its Service. */
    readonly name: string;
    readonly endpointSets: readonly EndpointSet[];
  }
  | { readonly kind: "Namespace"; readonly id: string; readonly namespace: string };

/** The kinds {@link parseObject} understands. */
export type ObjectKind = ParsedObject["kind"];

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

/**
 * The identity of an object used for duplicate detection: `Service default/web`,
 * `EndpointSlice default/web-abc`, `Endpoints default/web`, `Namespace prod`.
 */
export function objectId(kind: ObjectKind, namespace: string, name: string): string {
  return kind === "Namespace" ? `Namespace ${name}` : `${kind} ${namespace}/${name}`;
}

/**
 * The identity of a raw object, when its kind and names can be read even if it is otherwise
 * invalid; lets a reload keep the last good version of an object that became invalid.
 */
export function rawObjectId(obj: unknown): string | undefined {
  if (!isPlainObject(obj)) return undefined;
  const kind = obj.kind;
  if (
    kind !== "Service" && kind !== "EndpointSlice" && kind !== "Endpoints" && kind !== "Namespace"
  ) return undefined;
  const meta = obj.metadata;
  if (!isPlainObject(meta) || typeof meta.name !== "string" || meta.name === "") return undefined;
  const ns = meta.namespace === undefined || meta.namespace === null || meta.namespace === ""
    ? "default"
    : meta.namespace;
  if (typeof ns !== "string") return undefined;
  return objectId(kind, ns, meta.name);
}

// ---------------------------------------------------------------------------------------------
// Name rules (the same as Kubernetes' apimachinery validation).

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

const DNS1123_LABEL_RULE =
  'a DNS-1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters';
const DNS1035_LABEL_RULE =
  'a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters';
const DNS1123_SUBDOMAIN_RULE =
  "a DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters";
const IANA_SVC_NAME_RULE =
  'an IANA service name: 1-15 characters a-z, 0-9 and "-", at least one letter, no leading, trailing or double "-"';

function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

function isDns1035Label(s: string): boolean {
  return s.length <= 63 && DNS1035_LABEL.test(s);
}

// Node names and zones repeat across every endpoint of a cluster: remember the valid ones.
const validSubdomains = new Set<string>();

function isDns1123Subdomain(s: string): boolean {
  if (validSubdomains.has(s)) return true;
  if (s.length > 253 || !DNS1123_SUBDOMAIN.test(s)) return false;
  if (validSubdomains.size >= 4096) validSubdomains.clear();
  validSubdomains.add(s);
  return true;
}

function isIanaSvcName(s: string): boolean {
  return s.length <= 15 && IANA_SVC_NAME.test(s) && /[a-z]/.test(s) && !s.includes("--");
}

/** Why a label or annotation key is invalid, or null when it is valid. */
function qualifiedNameProblem(key: string): string | null {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : null;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== null && (prefix === "" || !isDns1123Subdomain(prefix))) {
    return `key prefix ${show(prefix)} is not ${DNS1123_SUBDOMAIN_RULE}`;
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME_PART.test(name)) {
    return `key name ${
      show(name)
    } must be 1-63 characters of A-Z, a-z, 0-9, "-", "_" and ".", starting and ending with a letter or digit`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Reading helpers: every reader reports into a context and returns undefined when absent or bad.

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The value as it appears in the error, always quoted as JSON and kept short. */
function show(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > 80 ? `${text.slice(0, 76)}...${text.slice(-1)}` : text;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function child(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  if (!IDENT.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path ? `${path}.${key}` : key;
}

class Ctx {
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

  ip(v: unknown, path: string, family?: IpFamily): string | undefined {
    const text = this.string(v, path);
    if (text === undefined) return undefined;
    // Most addresses are canonical IPv4 already: one regex instead of a parse and a format.
    const fastV4 = CANONICAL_V4.test(text);
    const ip = fastV4 ? text : canonicalIp(text);
    if (ip === null) {
      this.error(path, `${show(text)} is not an IP address`);
      return undefined;
    }
    if (family !== undefined && (fastV4 ? 4 : ipFamilyOf(ip)) !== family) {
      this.error(path, `${show(text)} is not an IPv${family} address`);
      return undefined;
    }
    return ip;
  }

  /** A list of IP addresses, canonicalized. */
  ipList(v: unknown, path: string): string[] {
    const items = this.array(v, path) ?? [];
    const out: string[] = [];
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
const SERVICE_TYPES: readonly ServiceType[] = [
  "ClusterIP",
  "NodePort",
  "LoadBalancer",
  "ExternalName",
];
const TRAFFIC_POLICIES: readonly TrafficPolicy[] = ["Cluster", "Local"];
const IP_FAMILY_POLICIES = ["SingleStack", "PreferDualStack", "RequireDualStack"] as const;

function isIpFamilyPolicy(v: unknown): v is (typeof IP_FAMILY_POLICIES)[number] {
  return (IP_FAMILY_POLICIES as readonly unknown[]).includes(v);
}
const DEFAULT_AFFINITY_TIMEOUT = 10800;
const MAX_AFFINITY_TIMEOUT = 86400;

function isPort(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65535;
}

// ---------------------------------------------------------------------------------------------
// Object metadata.

const TYPE_META_FIELDS = ["apiVersion", "kind", "metadata"];
const METADATA_FIELDS = new Set([
  "name",
  "namespace",
  "labels",
  "annotations",
  "uid",
  "resourceVersion",
  "generation",
  "generateName",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "ownerReferences",
  "finalizers",
  "managedFields",
  "selfLink",
]);

interface Meta {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/** Checks apiVersion and kind when present (API list items omit them). */
function checkTypeMeta(ctx: Ctx, obj: Record<string, unknown>, apiVersion: string, kind: string) {
  if (obj.kind !== undefined && obj.kind !== kind) {
    ctx.error("kind", `${show(obj.kind)} is not ${show(kind)}`);
  }
  if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersion) {
    ctx.error(
      "apiVersion",
      `${show(obj.apiVersion)} is not supported for kind ${kind} (expected ${show(apiVersion)})`,
    );
  }
}

function readStringMap(
  ctx: Ctx,
  v: unknown,
  path: string,
  checkValue: (value: string) => string | null,
): Record<string, string> {
  const obj = ctx.object(v, path);
  const out: Record<string, string> = {};
  if (!obj) return out;
  // Sorted, so equal maps written in another order give equal objects and fingerprints.
  for (const key of Object.keys(obj).sort()) {
    const p = child(path, key);
    const problem = qualifiedNameProblem(key);
    if (problem) {
      ctx.error(p, problem);
      continue;
    }
    const value = obj[key];
    if (typeof value !== "string") {
      ctx.error(p, `${show(value)} is not a string (quote it)`);
      continue;
    }
    const valueProblem = checkValue(value);
    if (valueProblem) {
      ctx.error(p, valueProblem);
      continue;
    }
    out[key] = value;
  }
  return out;
}

function labelValueProblem(value: string): string | null {
  if (value.length <= 63 && LABEL_VALUE.test(value)) return null;
  return `${
    show(value)
  } is not a label value: at most 63 characters of A-Z, a-z, 0-9, "-", "_" and ".", starting and ending with a letter or digit`;
}

/**
 * Reads metadata: the name (checked by `nameRule`), the namespace (default "default"), labels
 * and annotations.
 */
function readMeta(
  ctx: Ctx,
  obj: Record<string, unknown>,
  kind: string,
  nameRule: "dns1035" | "dns1123label" | "dns1123subdomain",
  namespaced: boolean,
): Meta | undefined {
  const meta = ctx.object(obj.metadata, "metadata");
  if (!meta) {
    if (obj.metadata === undefined || obj.metadata === null) {
      ctx.error("metadata", `missing; every ${kind} needs metadata.name`);
    }
    return undefined;
  }
  ctx.unknownFields(meta, "metadata", METADATA_FIELDS);
  const name = ctx.string(meta.name, "metadata.name");
  if (meta.name === undefined || meta.name === null || name === "") {
    ctx.error("metadata.name", `missing; every ${kind} needs a name`);
  } else if (name !== undefined) {
    const [ok, rule] = nameRule === "dns1035"
      ? [isDns1035Label(name), DNS1035_LABEL_RULE]
      : nameRule === "dns1123label"
      ? [isDns1123Label(name), DNS1123_LABEL_RULE]
      : [isDns1123Subdomain(name), DNS1123_SUBDOMAIN_RULE];
    if (!ok) ctx.error("metadata.name", `${show(name)} is not a valid ${kind} name (${rule})`);
  }
  let namespace = "default";
  if (namespaced) {
    const ns = ctx.string(meta.namespace, "metadata.namespace");
    if (ns !== undefined && ns !== "") {
      if (isDns1123Label(ns)) {
        namespace = ns;
      } else {
        ctx.error(
          "metadata.namespace",
          `${show(ns)} is not a valid namespace (${DNS1123_LABEL_RULE})`,
        );
      }
    }
  }
  const labels = readStringMap(ctx, meta.labels, "metadata.labels", labelValueProblem);
  const annotations = readStringMap(ctx, meta.annotations, "metadata.annotations", () => null);
  if (name === undefined || name === "") return undefined;
  return { name, namespace, labels, annotations };
}

/**
 * Checks an endpoint's targetRef. Nothing in svcgate reads it, so it is validated (a malformed
 * one still rejects the endpoint, as the API would) but not kept: one object per endpoint.
 */
function checkTargetRef(ctx: Ctx, v: unknown, path: string): void {
  const obj = ctx.object(v, path);
  if (!obj) return;
  ctx.string(obj.kind, child(path, "kind"));
  const name = ctx.string(obj.name, child(path, "name"));
  ctx.string(obj.namespace, child(path, "namespace"));
  if (obj.name === undefined || obj.name === null || name === "") {
    ctx.error(child(path, "name"), "missing; a targetRef names the object behind the endpoint");
  }
}

function readHostname(ctx: Ctx, v: unknown, path: string): string | undefined {
  const hostname = ctx.string(v, path);
  if (hostname === undefined || hostname === "") return undefined;
  if (!isDns1123Label(hostname)) {
    ctx.error(path, `${show(hostname)} is not a valid hostname (${DNS1123_LABEL_RULE})`);
    return undefined;
  }
  return hostname;
}

function readNodeName(ctx: Ctx, v: unknown, path: string): string | undefined {
  const nodeName = ctx.string(v, path);
  if (nodeName === undefined || nodeName === "") return undefined;
  if (!isDns1123Subdomain(nodeName)) {
    ctx.error(path, `${show(nodeName)} is not a valid node name (${DNS1123_SUBDOMAIN_RULE})`);
    return undefined;
  }
  return nodeName;
}

// ---------------------------------------------------------------------------------------------
// Service.

/** Labels a Service keeps: kube-proxy's own (`service.kubernetes.io/service-proxy-name`...). */
const KEPT_LABEL_PREFIX = "service.kubernetes.io/";
/** Annotations a Service keeps: svcgate's own (health checks). */
const KEPT_ANNOTATION_PREFIX = "svcgate.io/";

/**
 * The entries whose key starts with `prefix`. All are validated, but only those svcgate acts on
 * are kept: at 10,000 services the rest (app labels, kubectl's last-applied-configuration, which
 * is the whole object again) would be most of the model's memory, and their changes would
 * rebuild services for nothing.
 */
function withPrefix(
  map: Record<string, string>,
  prefix: string,
): Readonly<Record<string, string>> {
  let out: Record<string, string> | undefined;
  for (const key in map) if (key.startsWith(prefix)) (out ??= {})[key] = map[key];
  return out ? Object.freeze(out) : EMPTY_RECORD;
}

/**
 * The list, frozen, as an exact-size copy (a list grown by push() keeps room for 17 or more
 * entries: ~150 bytes for a one-port list, times several lists per object at 10,000 services);
 * the shared empty one when empty.
 */
function frozenList<T>(list: readonly T[]): readonly T[] {
  return list.length === 0 ? EMPTY_LIST : Object.freeze(list.slice());
}

const SERVICE_FIELDS = new Set([...TYPE_META_FIELDS, "spec", "status"]);
const SERVICE_SPEC_FIELDS = new Set([
  "type",
  "selector",
  "ports",
  "clusterIP",
  "clusterIPs",
  "ipFamilies",
  "ipFamilyPolicy",
  "externalIPs",
  "externalName",
  "sessionAffinity",
  "sessionAffinityConfig",
  "loadBalancerIP",
  "loadBalancerSourceRanges",
  "loadBalancerClass",
  "allocateLoadBalancerNodePorts",
  "externalTrafficPolicy",
  "internalTrafficPolicy",
  "healthCheckNodePort",
  "publishNotReadyAddresses",
  "trafficDistribution",
]);
const SERVICE_PORT_FIELDS = new Set([
  "name",
  "protocol",
  "port",
  "targetPort",
  "nodePort",
  "appProtocol",
]);

interface ClusterIpResult {
  readonly clusterIPs: string[];
  readonly headless: boolean;
  /** Path of each entry of clusterIPs, for later messages. */
  readonly paths: string[];
}

function readClusterIps(
  ctx: Ctx,
  spec: Record<string, unknown>,
  type: ServiceType,
): ClusterIpResult {
  const single = ctx.string(spec.clusterIP, "spec.clusterIP");
  const listRaw = ctx.array(spec.clusterIPs, "spec.clusterIPs");
  const list: { text: string; path: string }[] = [];
  if (listRaw && listRaw.length > 0) {
    listRaw.forEach((item, i) => {
      const text = ctx.string(item, `spec.clusterIPs[${i}]`);
      if (text !== undefined) list.push({ text, path: `spec.clusterIPs[${i}]` });
    });
    if (single !== undefined && single !== "" && list.length > 0 && list[0].text !== single) {
      const a = canonicalIp(list[0].text), b = canonicalIp(single);
      if (a === null || a !== b) {
        ctx.error(
          "spec.clusterIPs[0]",
          `${show(list[0].text)} does not match spec.clusterIP ${show(single)}`,
        );
      }
    }
  } else if (single !== undefined && single !== "") {
    list.push({ text: single, path: "spec.clusterIP" });
  }
  if (type === "ExternalName") {
    if (list.length > 0) {
      ctx.error(
        list[0].path,
        `${show(list[0].text)} is not allowed for type ExternalName (leave it empty)`,
      );
    }
    return { clusterIPs: [], headless: false, paths: [] };
  }
  if (list.some((e) => e.text === "None")) {
    if (list.length > 1) {
      ctx.error(
        "spec.clusterIPs",
        `"None" must be the only entry, got ${show(list.map((e) => e.text))}`,
      );
    } else if (type === "NodePort" || type === "LoadBalancer") {
      ctx.error(list[0].path, `"None" (headless) is not allowed for type ${type}`);
    }
    return { clusterIPs: [], headless: true, paths: [] };
  }
  if (list.length > 2) {
    ctx.error(
      "spec.clusterIPs",
      `${list.length} addresses given; at most 2 are allowed (one per IP family): ${
        show(list.map((e) => e.text))
      }`,
    );
    return { clusterIPs: [], headless: false, paths: [] };
  }
  const clusterIPs: string[] = [], paths: string[] = [];
  for (const { text, path } of list) {
    const ip = canonicalIp(text);
    if (ip === null) {
      ctx.error(path, `${show(text)} is not an IP address (or "None" for a headless service)`);
      continue;
    }
    if (clusterIPs.length === 1 && ipFamilyOf(clusterIPs[0]) === ipFamilyOf(ip)) {
      ctx.error(
        path,
        `${show(text)} has the same IP family as ${paths[0]} ${
          show(clusterIPs[0])
        }; dual-stack needs one IPv4 and one IPv6 address`,
      );
      continue;
    }
    clusterIPs.push(ip);
    paths.push(path);
  }
  return { clusterIPs, headless: false, paths };
}

function readIpFamilies(
  ctx: Ctx,
  spec: Record<string, unknown>,
  type: ServiceType,
  ips: ClusterIpResult,
): IpFamily[] {
  const raw = ctx.array(spec.ipFamilies, "spec.ipFamilies") ?? [];
  const explicit: IpFamily[] = [];
  raw.forEach((item, i) => {
    const path = `spec.ipFamilies[${i}]`;
    const name = ctx.oneOf(item, path, ["IPv4", "IPv6"] as const, "an IP family");
    if (name === undefined) return;
    const family: IpFamily = name === "IPv4" ? 4 : 6;
    if (explicit.includes(family)) {
      ctx.error(path, `${show(name)} is listed twice`);
      return;
    }
    if (i < ips.clusterIPs.length && ipFamilyOf(ips.clusterIPs[i]) !== family) {
      ctx.error(
        path,
        `${show(name)} does not match the family of ${ips.paths[i]} ${show(ips.clusterIPs[i])}`,
      );
      return;
    }
    explicit.push(family);
  });
  if (explicit.length > 0 && ips.clusterIPs.length > explicit.length) {
    ctx.error(
      "spec.ipFamilies",
      `lists ${explicit.length} family but spec.clusterIPs has ${ips.clusterIPs.length} addresses`,
    );
  }
  const policy = ctx.oneOf(
    spec.ipFamilyPolicy,
    "spec.ipFamilyPolicy",
    IP_FAMILY_POLICIES,
    "an IP family policy",
  );
  if (type === "ExternalName") return [];
  const families = explicit.length > 0 ? explicit : ips.clusterIPs.map((ip) => ipFamilyOf(ip)!);
  const requested = Math.max(families.length, ips.clusterIPs.length);
  if (policy === "SingleStack" && requested > 1) {
    ctx.error(
      "spec.ipFamilyPolicy",
      `"SingleStack" allows one IP family, but ${requested} are requested`,
    );
  }
  if ((policy === "PreferDualStack" || policy === "RequireDualStack") && families.length < 2) {
    // Both families are wanted; the primary one first (IPv4 unless one is already chosen).
    const first: IpFamily = families[0] ?? 4;
    return [first, first === 4 ? 6 : 4];
  }
  return families;
}

function readServicePorts(
  ctx: Ctx,
  spec: Record<string, unknown>,
  type: ServiceType,
  headless: boolean,
): ServicePort[] {
  const raw = ctx.array(spec.ports, "spec.ports");
  if ((raw === undefined || raw.length === 0) && !headless && type !== "ExternalName") {
    if (spec.ports === undefined || spec.ports === null || Array.isArray(spec.ports)) {
      ctx.error(
        "spec.ports",
        "no ports; a Service needs at least one port unless it is headless or ExternalName",
      );
    }
    return [];
  }
  const items = raw ?? [];
  const ports: ServicePort[] = [];
  const names = new Map<string, number>();
  const portProto = new Map<string, number>();
  const nodePorts = new Map<string, number>();
  const allowNodePort = type === "NodePort" || type === "LoadBalancer";
  items.forEach((item, i) => {
    const path = `spec.ports[${i}]`;
    const obj = ctx.object(item, path);
    if (!obj) {
      if (item === null || item === undefined) ctx.error(path, "expected an object, got null");
      return;
    }
    const before = ctx.errors.length;
    ctx.unknownFields(obj, path, SERVICE_PORT_FIELDS);
    const name = ctx.string(obj.name, `${path}.name`) ?? "";
    if (name === "") {
      if (items.length > 1 && (obj.name === undefined || obj.name === null || obj.name === "")) {
        ctx.error(
          `${path}.name`,
          "missing; every port needs a name when a Service has more than one port",
        );
      }
    } else if (!isDns1123Label(name)) {
      ctx.error(`${path}.name`, `${show(name)} is not a valid port name (${DNS1123_LABEL_RULE})`);
    } else if (names.has(name)) {
      ctx.error(`${path}.name`, `${show(name)} is already used by spec.ports[${names.get(name)}]`);
    } else {
      names.set(name, i);
    }
    const protocol = ctx.protocol(obj.protocol, `${path}.protocol`);
    const port = ctx.port(obj.port, `${path}.port`);
    if (obj.port === undefined || obj.port === null) {
      ctx.error(`${path}.port`, "missing; a port number (1-65535) is required");
    } else if (port !== undefined) {
      const key = `${port}/${protocol}`;
      if (portProto.has(key)) {
        ctx.error(path, `port ${key} is already used by spec.ports[${portProto.get(key)}]`);
      } else portProto.set(key, i);
    }
    let targetPort: number | string | undefined;
    const tp = obj.targetPort;
    if (tp === undefined || tp === null || tp === 0 || tp === "") {
      targetPort = port;
    } else if (typeof tp === "number") {
      if (isPort(tp)) targetPort = tp;
      else ctx.error(`${path}.targetPort`, `${show(tp)} is not a port (1-65535)`);
    } else if (typeof tp === "string") {
      if (isIanaSvcName(tp)) {
        targetPort = tp;
      } else {
        const message = `${show(tp)} is not a port number or ${IANA_SVC_NAME_RULE}`;
        ctx.error(`${path}.targetPort`, message);
      }
    } else {
      ctx.error(`${path}.targetPort`, `${show(tp)} is not a port number or a port name`);
    }
    let nodePort: number | undefined;
    const np = obj.nodePort;
    if (np !== undefined && np !== null && np !== 0) {
      if (!allowNodePort) {
        ctx.error(
          `${path}.nodePort`,
          `${show(np)} is not allowed for type ${type} (only NodePort and LoadBalancer)`,
        );
      } else {
        // Any port is accepted: the node port range is a cluster setting (default 30000-32767).
        nodePort = ctx.port(np, `${path}.nodePort`);
        if (nodePort !== undefined) {
          const key = `${nodePort}/${protocol}`;
          if (nodePorts.has(key)) {
            ctx.error(
              `${path}.nodePort`,
              `${key} is already used by spec.ports[${nodePorts.get(key)}]`,
            );
          } else nodePorts.set(key, i);
        }
      }
    }
    if (
      ctx.failedSince(before) || port === undefined ||
      targetPort === undefined
    ) {
      return;
    }
    ports.push(Object.freeze({
      name,
      protocol,
      port,
      targetPort,
      ...(nodePort !== undefined ? { nodePort } : {}),
    }));
  });
  return ports;
}

/**
 * Parses a `v1 Service` into the model.
 *
 * @example
 * ```ts
 * const { value, errors } = parseService(
 *   { apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { ports: [{ port: 80 }] } },
 *   "services.yaml#1",
 * );
 * value?.ports[0].targetPort; // 80
 * errors.map(formatError);    // []
 * ```
 */
export function parseService(
  obj: unknown,
  where: string,
  options: ParseOptions = {},
): ParseResult<Service> {
  const ctx = new Ctx(where, options);
  if (!isPlainObject(obj)) {
    ctx.error("", `expected a Service object, got ${show(obj)}`);
    return { errors: ctx.errors };
  }
  checkTypeMeta(ctx, obj, "v1", "Service");
  ctx.unknownFields(obj, "", SERVICE_FIELDS);
  const meta = readMeta(ctx, obj, "Service", "dns1035", true);
  const spec = ctx.object(obj.spec, "spec");
  if (!spec) {
    if (obj.spec === undefined || obj.spec === null) {
      ctx.error("spec", "missing; a Service needs a spec with its ports");
    }
    return { errors: ctx.errors };
  }
  ctx.unknownFields(spec, "spec", SERVICE_SPEC_FIELDS);
  const type = ctx.oneOf(spec.type, "spec.type", SERVICE_TYPES, "a service type") ?? "ClusterIP";
  const ips = readClusterIps(ctx, spec, type);
  const ipFamilies = readIpFamilies(ctx, spec, type, ips);
  const ports = readServicePorts(ctx, spec, type, ips.headless);
  const externalIPs = ctx.ipList(spec.externalIPs, "spec.externalIPs");

  const loadBalancerIPs: string[] = [];
  const status = ctx.object(obj.status, "status");
  const lb = status ? ctx.object(status.loadBalancer, "status.loadBalancer") : undefined;
  const ingress = lb ? ctx.array(lb.ingress, "status.loadBalancer.ingress") ?? [] : [];
  ingress.forEach((item, i) => {
    const path = `status.loadBalancer.ingress[${i}]`;
    const ing = ctx.object(item, path);
    if (!ing) return;
    const ip = ctx.ip(ing.ip, `${path}.ip`);
    if (ip !== undefined && !loadBalancerIPs.includes(ip)) loadBalancerIPs.push(ip);
  });

  const ranges: string[] = [];
  (ctx.array(spec.loadBalancerSourceRanges, "spec.loadBalancerSourceRanges") ?? []).forEach(
    (item, i) => {
      const path = `spec.loadBalancerSourceRanges[${i}]`;
      const text = ctx.string(item, path);
      if (text === undefined) return;
      const cidr = parseCidr(text.trim());
      if (typeof cidr === "string") ctx.error(path, cidr);
      else if (!ranges.includes(cidr.text)) ranges.push(cidr.text);
    },
  );

  const sessionAffinity = ctx.oneOf(
    spec.sessionAffinity,
    "spec.sessionAffinity",
    ["None", "ClientIP"] as const,
    "a session affinity",
  ) ??
    "None";
  let sessionAffinityTimeoutSeconds = DEFAULT_AFFINITY_TIMEOUT;
  const affinityConfig = ctx.object(spec.sessionAffinityConfig, "spec.sessionAffinityConfig");
  if (affinityConfig) {
    if (sessionAffinity !== "ClientIP") {
      ctx.error(
        "spec.sessionAffinityConfig",
        `only allowed when sessionAffinity is "ClientIP", got ${show(sessionAffinity)}`,
      );
    }
    const clientIP = ctx.object(affinityConfig.clientIP, "spec.sessionAffinityConfig.clientIP");
    const t = clientIP?.timeoutSeconds;
    if (t !== undefined && t !== null) {
      if (typeof t === "number" && Number.isInteger(t) && t >= 1 && t <= MAX_AFFINITY_TIMEOUT) {
        sessionAffinityTimeoutSeconds = t;
      } else {
        ctx.error(
          "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
          `${show(t)} is not a timeout (1-${MAX_AFFINITY_TIMEOUT} seconds)`,
        );
      }
    }
  }

  const internalTrafficPolicy = ctx.oneOf(
    spec.internalTrafficPolicy,
    "spec.internalTrafficPolicy",
    TRAFFIC_POLICIES,
    "a traffic policy",
  ) ??
    "Cluster";
  const etp = ctx.oneOf(
    spec.externalTrafficPolicy,
    "spec.externalTrafficPolicy",
    TRAFFIC_POLICIES,
    "a traffic policy",
  );
  // As in Kubernetes, only externally reachable services have external traffic. A warning, not a
  // rejection: clusters before 1.24 could leave the field behind when a type changed.
  const external = type === "NodePort" || type === "LoadBalancer" ||
    (type === "ClusterIP" && externalIPs.length > 0);
  if (etp !== undefined && !external) {
    ctx.warn(
      "spec.externalTrafficPolicy",
      `${show(etp)} is ignored: only externally reachable services ` +
        "(type NodePort or LoadBalancer, or with externalIPs) have external traffic",
    );
  }
  const externalTrafficPolicy = external ? etp ?? "Cluster" : "Cluster";
  const publishNotReadyAddresses =
    ctx.boolean(spec.publishNotReadyAddresses, "spec.publishNotReadyAddresses") ??
      false;

  let externalName: string | undefined;
  if (type === "ExternalName") {
    const raw = ctx.string(spec.externalName, "spec.externalName");
    if (raw === undefined || raw === "") {
      if (raw === "" || spec.externalName === undefined || spec.externalName === null) {
        ctx.error("spec.externalName", "missing; type ExternalName needs a DNS name to point at");
      }
    } else {
      const name = raw.endsWith(".") ? raw.slice(0, -1) : raw;
      if (isDns1123Subdomain(name)) {
        externalName = name;
      } else {
        const message = `${show(raw)} is not a DNS name (${DNS1123_SUBDOMAIN_RULE})`;
        ctx.error("spec.externalName", message);
      }
    }
  }

  if (ctx.failed || !meta) return { errors: ctx.errors };
  const service: Service = {
    namespace: meta.namespace,
    name: meta.name,
    type,
    clusterIPs: frozenList(ips.clusterIPs),
    headless: ips.headless,
    ports: frozenList(ports),
    externalIPs: frozenList(externalIPs),
    loadBalancerIPs: frozenList(type === "LoadBalancer" ? loadBalancerIPs : []),
    loadBalancerSourceRanges: frozenList(ranges),
    sessionAffinity,
    sessionAffinityTimeoutSeconds,
    internalTrafficPolicy,
    externalTrafficPolicy,
    publishNotReadyAddresses,
    ...(externalName !== undefined ? { externalName } : {}),
    ipFamilies: frozenList(ipFamilies),
    ...(isIpFamilyPolicy(spec.ipFamilyPolicy) ? { ipFamilyPolicy: spec.ipFamilyPolicy } : {}),
    labels: withPrefix(meta.labels, KEPT_LABEL_PREFIX),
    annotations: withPrefix(meta.annotations, KEPT_ANNOTATION_PREFIX),
  };
  return { value: Object.freeze(service), errors: ctx.errors };
}

// ---------------------------------------------------------------------------------------------
// Endpoint ports, shared by EndpointSlice and Endpoints.

const ENDPOINT_PORT_FIELDS = new Set(["name", "protocol", "port", "appProtocol"]);

/**
 * Reads endpoint ports with the rules of the API for each kind. An EndpointSlice port without a
 * number is legal ("all ports") and kube-proxy skips it; svcgate does the same, with a warning,
 * instead of dropping the slice. Endpoints need names when there are several ports; slices only
 * need unique names.
 */
function readEndpointPorts(
  ctx: Ctx,
  v: unknown,
  path: string,
  kind: "EndpointSlice" | "Endpoints",
): EndpointPort[] {
  const slice = kind === "EndpointSlice";
  const items = ctx.array(v, path) ?? [];
  const out: EndpointPort[] = [];
  const names = new Map<string, number>();
  items.forEach((item, i) => {
    const p = child(path, i);
    const obj = ctx.object(item, p);
    if (!obj) return;
    ctx.unknownFields(obj, p, ENDPOINT_PORT_FIELDS);
    const before = ctx.errors.length;
    const name = ctx.string(obj.name, `${p}.name`) ?? "";
    const nameGiven = typeof obj.name === "string" && obj.name !== "";
    if (!nameGiven && items.length > 1 && !slice && typeof (obj.name ?? "") === "string") {
      ctx.error(`${p}.name`, "missing; every port needs a name when there is more than one port");
    } else if (name !== "" && !isDns1123Label(name)) {
      ctx.error(`${p}.name`, `${show(name)} is not a valid port name (${DNS1123_LABEL_RULE})`);
    } else if (names.has(name)) {
      ctx.error(`${p}.name`, `${show(name)} is already used by ${path}[${names.get(name)}]`);
    } else names.set(name, i);
    const protocol = ctx.protocol(obj.protocol, `${p}.protocol`);
    const port = ctx.port(obj.port, `${p}.port`);
    if ((obj.port === undefined || obj.port === null) && slice) {
      ctx.warn(`${p}.port`, "missing; this port is ignored (svcgate needs a port number)");
    } else if (obj.port === undefined || obj.port === null) {
      ctx.error(`${p}.port`, "missing; a port number (1-65535) is required");
    }
    if (ctx.failedSince(before) || port === undefined) return;
    out.push(Object.freeze({ name, protocol, port }));
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// EndpointSlice.

const SLICE_FIELDS = new Set([...TYPE_META_FIELDS, "addressType", "endpoints", "ports"]);
const SLICE_ENDPOINT_FIELDS = new Set([
  "addresses",
  "conditions",
  "hostname",
  "targetRef",
  "nodeName",
  "zone",
  "hints",
  "deprecatedTopology",
]);
const CONDITION_FIELDS = new Set(["ready", "serving", "terminating"]);

/**
 * Parses a `discovery.k8s.io/v1 EndpointSlice` into one endpoint set (id = the slice name). Only
 * the first address of each endpoint is used, as kube-proxy does (the others are equivalent by
 * definition). FQDN slices are ignored with a warning.
 *
 * @example
 * ```ts
 * const { value } = parseEndpointSlice({
 *   apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", addressType: "IPv4",
 *   metadata: { name: "web-1", labels: { "kubernetes.io/service-name": "web" } },
 *   endpoints: [{ addresses: ["198.18.0.10"] }], ports: [{ port: 8080 }],
 * }, "slices.yaml#1");
 * value?.endpoints[0].ready; // true
 * ```
 */
export function parseEndpointSlice(
  obj: unknown,
  where: string,
  options: ParseOptions = {},
): ParseResult<EndpointSet> {
  const ctx = new Ctx(where, options);
  if (!isPlainObject(obj)) {
    ctx.error("", `expected an EndpointSlice object, got ${show(obj)}`);
    return { errors: ctx.errors };
  }
  checkTypeMeta(ctx, obj, "discovery.k8s.io/v1", "EndpointSlice");
  ctx.unknownFields(obj, "", SLICE_FIELDS);
  const meta = readMeta(ctx, obj, "EndpointSlice", "dns1123subdomain", true);
  const labelPath = child("metadata.labels", SERVICE_NAME_LABEL);
  const serviceName = meta?.labels[SERVICE_NAME_LABEL];
  if (meta && serviceName === undefined) {
    const raw = isPlainObject(obj.metadata) && isPlainObject(obj.metadata.labels)
      ? obj.metadata.labels[SERVICE_NAME_LABEL]
      : undefined;
    // A present but invalid value has been reported by the label check already.
    if (raw === undefined || raw === null) {
      ctx.error(labelPath, "missing; an EndpointSlice names its Service in this label");
    }
  } else if (serviceName !== undefined && !isDns1035Label(serviceName)) {
    ctx.error(
      labelPath,
      `${show(serviceName)} is not a valid Service name (${DNS1035_LABEL_RULE})`,
    );
  }
  const addressType = obj.addressType;
  if (addressType === "FQDN") {
    // Kubernetes itself ignores FQDN slices for proxying; so do we, visibly.
    return {
      errors: [...ctx.errors, {
        where,
        path: "addressType",
        message: '"FQDN" slices are not used by svcgate; slice ignored',
        severity: "warning",
      }],
    };
  }
  let family: IpFamily | undefined;
  if (addressType === undefined || addressType === null) {
    ctx.error("addressType", "missing; expected IPv4 or IPv6");
  } else if (addressType === "IPv4") family = 4;
  else if (addressType === "IPv6") family = 6;
  else ctx.error("addressType", `${show(addressType)} is not an address type (IPv4, IPv6, FQDN)`);

  const endpoints: Endpoint[] = [];
  (ctx.array(obj.endpoints, "endpoints") ?? []).forEach((item, i) => {
    const path = `endpoints[${i}]`;
    const ep = ctx.object(item, path);
    if (!ep) return;
    ctx.unknownFields(ep, path, SLICE_ENDPOINT_FIELDS);
    const before = ctx.errors.length;
    const addresses = ctx.array(ep.addresses, `${path}.addresses`);
    let address: string | undefined;
    if (!addresses || addresses.length === 0) {
      if (addresses || ep.addresses === undefined || ep.addresses === null) {
        ctx.error(`${path}.addresses`, "missing; every endpoint needs an address");
      }
    } else {
      addresses.forEach((a, j) => {
        const ip = ctx.ip(a, `${path}.addresses[${j}]`, family);
        if (j === 0) address = ip;
      });
    }
    const conditions = ctx.object(ep.conditions, `${path}.conditions`);
    if (conditions) ctx.unknownFields(conditions, `${path}.conditions`, CONDITION_FIELDS);
    const ready = ctx.boolean(conditions?.ready, `${path}.conditions.ready`) ?? true;
    const serving = ctx.boolean(conditions?.serving, `${path}.conditions.serving`) ?? ready;
    const terminating = ctx.boolean(conditions?.terminating, `${path}.conditions.terminating`) ??
      false;
    const hostname = readHostname(ctx, ep.hostname, `${path}.hostname`);
    const nodeName = readNodeName(ctx, ep.nodeName, `${path}.nodeName`);
    const zone = ctx.string(ep.zone, `${path}.zone`);
    checkTargetRef(ctx, ep.targetRef, `${path}.targetRef`);
    if (ctx.failedSince(before) || address === undefined) return;
    endpoints.push({
      address,
      ready,
      serving,
      terminating,
      ...(nodeName !== undefined ? { nodeName } : {}),
      ...(zone !== undefined && zone !== "" ? { zone } : {}),
      ...(hostname !== undefined ? { hostname } : {}),
    });
  });
  const ports = readEndpointPorts(ctx, obj.ports, "ports", "EndpointSlice");
  if (ctx.failed || !meta || serviceName === undefined) return { errors: ctx.errors };
  return {
    value: endpointSet({
      namespace: meta.namespace,
      serviceName,
      id: meta.name,
      ports: frozenList(ports),
      endpoints,
    }),
    errors: ctx.errors,
  };
}

// ---------------------------------------------------------------------------------------------
// Endpoints (v1).

const ENDPOINTS_FIELDS = new Set([...TYPE_META_FIELDS, "subsets"]);
const SUBSET_FIELDS = new Set(["addresses", "notReadyAddresses", "ports"]);
const ADDRESS_FIELDS = new Set(["ip", "hostname", "nodeName", "targetRef"]);

/**
 * Parses a `v1 Endpoints` into one endpoint set per subset, with ids `endpoints/<name>#<i>`.
 * `addresses` are ready; `notReadyAddresses` are neither ready nor serving.
 *
 * @example
 * ```ts
 * const { value } = parseEndpoints({
 *   apiVersion: "v1", kind: "Endpoints", metadata: { name: "db" },
 *   subsets: [{ addresses: [{ ip: "198.18.0.20" }], ports: [{ port: 5432 }] }],
 * }, "db.yaml#2");
 * value?.[0].id; // "endpoints/db#0"
 * ```
 */
export function parseEndpoints(
  obj: unknown,
  where: string,
  options: ParseOptions = {},
): ParseResult<EndpointSet[]> {
  const ctx = new Ctx(where, options);
  if (!isPlainObject(obj)) {
    ctx.error("", `expected an Endpoints object, got ${show(obj)}`);
    return { errors: ctx.errors };
  }
  checkTypeMeta(ctx, obj, "v1", "Endpoints");
  ctx.unknownFields(obj, "", ENDPOINTS_FIELDS);
  const meta = readMeta(ctx, obj, "Endpoints", "dns1123subdomain", true);
  const sets: EndpointSet[] = [];
  (ctx.array(obj.subsets, "subsets") ?? []).forEach((item, i) => {
    const path = `subsets[${i}]`;
    const subset = ctx.object(item, path);
    if (!subset) return;
    ctx.unknownFields(subset, path, SUBSET_FIELDS);
    const endpoints: Endpoint[] = [];
    for (const [field, ready] of [["addresses", true], ["notReadyAddresses", false]] as const) {
      (ctx.array(subset[field], `${path}.${field}`) ?? []).forEach((a, j) => {
        const ap = `${path}.${field}[${j}]`;
        const addr = ctx.object(a, ap);
        if (!addr) return;
        ctx.unknownFields(addr, ap, ADDRESS_FIELDS);
        const before = ctx.errors.length;
        if (addr.ip === undefined || addr.ip === null || addr.ip === "") {
          ctx.error(`${ap}.ip`, "missing; every address needs an ip");
        }
        const ip = ctx.ip(addr.ip === "" ? undefined : addr.ip, `${ap}.ip`);
        const hostname = readHostname(ctx, addr.hostname, `${ap}.hostname`);
        const nodeName = readNodeName(ctx, addr.nodeName, `${ap}.nodeName`);
        checkTargetRef(ctx, addr.targetRef, `${ap}.targetRef`);
        if (ctx.failedSince(before) || ip === undefined) return;
        endpoints.push({
          address: ip,
          ready,
          serving: ready,
          terminating: false,
          ...(nodeName !== undefined ? { nodeName } : {}),
          ...(hostname !== undefined ? { hostname } : {}),
        });
      });
    }
    const ports = readEndpointPorts(ctx, subset.ports, `${path}.ports`, "Endpoints");
    if (meta) {
      sets.push(endpointSet({
        namespace: meta.namespace,
        serviceName: meta.name,
        id: `endpoints/${meta.name}#${i}`,
        ports: frozenList(ports),
        endpoints,
      }));
    }
  });
  if (ctx.failed || !meta) return { errors: ctx.errors };
  return { value: sets, errors: ctx.errors };
}

// ---------------------------------------------------------------------------------------------
// Namespace and dispatch.

/** Parses a `v1 Namespace` into its name. */
export function parseNamespace(
  obj: unknown,
  where: string,
  options: ParseOptions = {},
): ParseResult<string> {
  const ctx = new Ctx(where, options);
  if (!isPlainObject(obj)) {
    ctx.error("", `expected a Namespace object, got ${show(obj)}`);
    return { errors: ctx.errors };
  }
  checkTypeMeta(ctx, obj, "v1", "Namespace");
  const meta = readMeta(ctx, obj, "Namespace", "dns1123label", false);
  if (ctx.failed || !meta) return { errors: ctx.errors };
  return { value: meta.name, errors: ctx.errors };
}

const API_VERSIONS: Record<ObjectKind, string> = {
  Service: "v1",
  Endpoints: "v1",
  Namespace: "v1",
  EndpointSlice: "discovery.k8s.io/v1",
};

/**
 * Parses any object svcgate reads, dispatching on apiVersion and kind. Objects of other kinds
 * give no value and one warning; objects without a kind are errors.
 *
 * @example
 * ```ts
 * const { value } = parseObject({ apiVersion: "v1", kind: "Namespace", metadata: { name: "prod" } }, "ns.yaml#1");
 * value?.kind === "Namespace" && value.namespace; // "prod"
 * ```
 */
export function parseObject(
  obj: unknown,
  where: string,
  options: ParseOptions = {},
): ParseResult<ParsedObject> {
  if (!isPlainObject(obj)) {
    return {
      errors: [{
        where,
        path: "",
        message: `expected a Kubernetes object (a mapping with apiVersion and kind), got ${
          show(obj)
        }`,
      }],
    };
  }
  const kind = obj.kind;
  if (kind === undefined || kind === null || kind === "") {
    return {
      errors: [{
        where,
        path: "kind",
        message: "missing; expected Service, Endpoints, EndpointSlice or Namespace",
      }],
    };
  }
  if (typeof kind !== "string") {
    return { errors: [{ where, path: "kind", message: `${show(kind)} is not a string` }] };
  }
  if (!(kind in API_VERSIONS)) {
    return {
      errors: [{
        where,
        path: "kind",
        message: `${
          show(kind)
        } is not a kind svcgate reads (Service, Endpoints, EndpointSlice, Namespace); ignored`,
        severity: "warning",
      }],
    };
  }
  const k = kind as ObjectKind;
  if (obj.apiVersion === undefined || obj.apiVersion === null || obj.apiVersion === "") {
    return {
      errors: [{
        where,
        path: "apiVersion",
        message: `missing; expected ${show(API_VERSIONS[k])} for kind ${k}`,
      }],
    };
  }
  switch (k) {
    case "Service": {
      const r = parseService(obj, where, options);
      return r.value
        ? {
          value: { kind: k, id: objectId(k, r.value.namespace, r.value.name), service: r.value },
          errors: r.errors,
        }
        : { errors: r.errors };
    }
    case "EndpointSlice": {
      const r = parseEndpointSlice(obj, where, options);
      return r.value
        ? {
          value: { kind: k, id: objectId(k, r.value.namespace, r.value.id), endpointSet: r.value },
          errors: r.errors,
        }
        : { errors: r.errors };
    }
    case "Endpoints": {
      const r = parseEndpoints(obj, where, options);
      if (!r.value) return { errors: r.errors };
      const meta = obj.metadata as Record<string, unknown>;
      const namespace = typeof meta.namespace === "string" && meta.namespace !== ""
        ? meta.namespace
        : "default";
      const name = meta.name as string;
      return {
        value: {
          kind: k,
          id: objectId(k, namespace, name),
          namespace,
          name,
          endpointSets: Object.freeze(r.value),
        },
        errors: r.errors,
      };
    }
    case "Namespace": {
      const r = parseNamespace(obj, where, options);
      return r.value !== undefined
        ? { value: { kind: k, id: objectId(k, "", r.value), namespace: r.value }, errors: r.errors }
        : { errors: r.errors };
    }
  }
}
