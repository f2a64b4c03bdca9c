/**
 * A small stand-in for @kubernetes/client-node's KubeConfig: the selected cluster and user, and
 * `applyToFetchOptions()` (TLS agent and auth headers) as client-node's Watch and our raw lists
 * need them. Importing client-node's KubeConfig loads the whole generated API and every auth
 * plugin (azure, gcp, oidc); see ../README.md for its cost. This class does what KubeConfig does for bearer
 * tokens, token files, client certificates, CAs, insecure-skip-tls-verify, tls-server-name and
 * basic auth; for credentials that need client-node's plugins (exec, gcp/azure/oidc
 * auth-providers) or a proxy, it imports the full KubeConfig on first use and delegates to it.
 * @module
 */

import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { Buffer } from "node:buffer";
import type { Cluster, Context, User } from "@kubernetes/client-node/dist/config_types.js";
import type { KubeConfig } from "@kubernetes/client-node";

export type { Cluster, Context, User };

/** A user as loaded from a kubeconfig; `tokenFile` is the `token-file` the token came from. */
export type KubeUser = User & { readonly tokenFile?: string };

/** What `applyToFetchOptions` returns: a node-fetch RequestInit. */
export interface FetchOptions {
  agent?: unknown;
  headers?: unknown;
  method?: string;
  timeout?: number;
}

/**
 * What client-node's Watch and {@link import("./raw_list.ts").listRaw} need of a config; both
 * {@link KubeAccess} and client-node's KubeConfig satisfy it.
 */
export interface KubeClientConfig {
  getCurrentCluster(): Cluster | null;
  getCurrentUser(): User | null;
  // deno-lint-ignore no-explicit-any
  applyToFetchOptions(opts: any): Promise<FetchOptions>;
  /** What the runtime's own fetch needs, or null when only node:https can do it. */
  fetchInit?(): Promise<NativeFetchInit | null>;
}

/** A request through the runtime's fetch: its TLS client (null: the default) and headers. */
export interface NativeFetchInit {
  readonly client: Deno.HttpClient | null;
  readonly headers: Record<string, string>;
}

/** The kubeconfig data {@link KubeAccess} is built from (KubeConfig.loadFromOptions's shape). */
export interface KubeAccessOptions {
  readonly clusters: Cluster[];
  readonly users: KubeUser[];
  readonly contexts: Context[];
  readonly currentContext: string;
}

/** client-node's FileAuth re-reads the token file at most once a minute; so do we. */
const TOKEN_FILE_TTL_MS = 60_000;

/** Copies `headers` (a plain object or a Headers) into a plain object with lower-case names. */
export function headersToRecord(headers: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  const h = headers as { forEach?: unknown };
  if (typeof h.forEach === "function") {
    (headers as { forEach(cb: (v: string, k: string) => void): void }).forEach((v, k) =>
      out[k.toLowerCase()] = v
    );
  } else {
    for (const [k, v] of Object.entries(headers as Record<string, unknown>)) {
      if (Array.isArray(v)) out[k.toLowerCase()] = v.join(", ");
      else if (v !== undefined && v !== null) out[k.toLowerCase()] = String(v);
    }
  }
  return out;
}

/**
 * True when requests must go through client-node's full KubeConfig (exec, plugins, proxies):
 * client-node's authenticators match users by these rules (config.js, *_auth.js).
 */
export function needsPlugins(user: User | null, cluster: Cluster | null): boolean {
  if (cluster?.proxyUrl) return true;
  if (!user) return false;
  if (user.exec) return true;
  const p = user.authProvider;
  if (!p) return false;
  if (["azure", "gcp", "oidc", "exec"].includes(p.name)) return true;
  // FileAuth: any auth-provider whose config has a tokenFile.
  return !p.config?.tokenFile;
}

function findObject<T extends { name: string }>(list: readonly T[], name: string): T | null {
  return list.find((o) => o.name === name) ?? null;
}

/** The file's bytes, else the base64 data, else null (client-node's bufferFromFileOrString). */
function bufferFromFileOrString(file?: string | null, data?: string | null): Buffer | null {
  if (file) return fs.readFileSync(file);
  if (data) return Buffer.from(data, "base64");
  return null;
}

interface AgentSettings {
  readonly kind: "http" | "https";
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly rejectUnauthorized?: boolean;
  readonly servername?: string;
}

function sameBuffer(a?: Buffer, b?: Buffer): boolean {
  return a === b || (a !== undefined && b !== undefined && a.equals(b));
}

function sameSettings(a: AgentSettings, b: AgentSettings): boolean {
  return a.kind === b.kind && sameBuffer(a.ca, b.ca) && sameBuffer(a.cert, b.cert) &&
    sameBuffer(a.key, b.key) && a.rejectUnauthorized === b.rejectUnauthorized &&
    a.servername === b.servername;
}

/**
 * Cluster and user of the current context, with client-node KubeConfig's request options.
 *
 * @example
 * ```ts
 * const access = new KubeAccess({ clusters, users, contexts, currentContext: "ctx" });
 * const init = await access.applyToFetchOptions({}); // { agent, headers }
 * ```
 */
export class KubeAccess implements KubeClientConfig {
  clusters: Cluster[];
  users: KubeUser[];
  contexts: Context[];
  currentContext: string;
  #token: { file: string; value: string; readAt: number } | null = null;
  #agent: { settings: AgentSettings; agent: http.Agent } | null = null;
  #client: { settings: AgentSettings; client: Deno.HttpClient } | null = null;
  #full: Promise<KubeConfig> | null = null;
  /** Clock for the token-file cache; injectable for tests. */
  now: () => number = () => Date.now();

  constructor(opts: KubeAccessOptions) {
    this.clusters = opts.clusters;
    this.users = opts.users;
    this.contexts = opts.contexts;
    this.currentContext = opts.currentContext;
  }

  getCurrentContext(): string {
    return this.currentContext;
  }

  getContextObject(name: string): Context | null {
    return findObject(this.contexts, name);
  }

  getCurrentCluster(): Cluster | null {
    const ctx = this.getContextObject(this.currentContext);
    return ctx ? findObject(this.clusters, ctx.cluster) : null;
  }

  getCurrentUser(): KubeUser | null {
    const ctx = this.getContextObject(this.currentContext);
    return ctx ? findObject(this.users, ctx.user) : null;
  }

  /**
   * A client-node KubeConfig with the same clusters, users and contexts; imports the whole
   * package, so only for the plugin fallback and the "typed" list mode.
   */
  toKubeConfig(): Promise<KubeConfig> {
    return this.#full ??= (async () => {
      const { KubeConfig } = await import("@kubernetes/client-node");
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: this.clusters,
        users: this.users,
        contexts: this.contexts,
        currentContext: this.currentContext,
      });
      return kc;
    })();
  }

  /**
   * The agent and headers of a request, like KubeConfig.applyToFetchOptions: TLS options from
   * the cluster and user, then the token (file), static token, and basic auth.
   */
  async applyToFetchOptions(opts: { headers?: Record<string, string> } = {}): Promise<{
    agent: http.Agent;
    headers: Record<string, string>;
  }> {
    const own = this.#requestSettings(opts);
    if (own === null) {
      const init = await (await this.toKubeConfig()).applyToFetchOptions(opts);
      return {
        agent: init.agent as http.Agent,
        headers: headersToRecord(init.headers),
      };
    }
    return { agent: this.#agentFor(own.settings), headers: own.headers };
  }

  /**
   * The runtime's fetch for this context, or null where only node:https can do it: credential
   * plugins, insecure-skip-tls-verify over https, tls-server-name (Deno's HttpClient has neither
   * option). Lists go this way: node:http in Deno keeps a big download's buffers.
   */
  fetchInit(): Promise<NativeFetchInit | null> {
    const own = this.#requestSettings({});
    if (own === null) return Promise.resolve(null);
    const { settings, headers } = own;
    if (settings.kind === "http") return Promise.resolve({ client: null, headers });
    if (settings.rejectUnauthorized === false || settings.servername) {
      return Promise.resolve(null);
    }
    if (!this.#client || !sameSettings(this.#client.settings, settings)) {
      this.#client?.client.close();
      const client = Deno.createHttpClient({
        ...(settings.ca ? { caCerts: [settings.ca.toString("utf-8")] } : {}),
        ...(settings.cert && settings.key
          ? { cert: settings.cert.toString("utf-8"), key: settings.key.toString("utf-8") }
          : {}),
      });
      this.#client = { settings, client };
    }
    return Promise.resolve({ client: this.#client.client, headers });
  }

  /** TLS settings and headers of a request, or null when client-node's plugins must make them. */
  #requestSettings(
    opts: { headers?: Record<string, string> },
  ): { settings: AgentSettings; headers: Record<string, string> } | null {
    const cluster = this.getCurrentCluster();
    const user = this.getCurrentUser();
    if (needsPlugins(user, cluster)) return null;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k] = v;
    // applyHTTPSOptions. (client-node skips the cluster's TLS settings when the context names
    // no user, which only breaks such contexts; they are applied here regardless.)
    const settings: {
      -readonly [K in keyof AgentSettings]: AgentSettings[K];
    } = { kind: "https" };
    if (cluster?.skipTLSVerify) settings.rejectUnauthorized = false;
    if (cluster?.tlsServerName) settings.servername = cluster.tlsServerName;
    const ca = cluster ? bufferFromFileOrString(cluster.caFile, cluster.caData) : null;
    if (ca) settings.ca = ca;
    if (user) {
      const cert = bufferFromFileOrString(user.certFile, user.certData);
      if (cert) settings.cert = cert;
      const key = bufferFromFileOrString(user.keyFile, user.keyData);
      if (key) settings.key = key;
      if (user.impersonateUser != null) headers["Impersonate-User"] = user.impersonateUser;
      // applyAuthorizationHeader: FileAuth, then the static token wins.
      const tokenFile: string | undefined = user.authProvider?.config?.tokenFile ?? user.tokenFile;
      const fromFile = tokenFile ? this.#readToken(tokenFile, user.token) : undefined;
      if (fromFile) headers.Authorization = `Bearer ${fromFile}`;
      if (user.token && !user.tokenFile) headers.Authorization = `Bearer ${user.token}`;
      // applyToFetchOptions: basic auth replaces any bearer token.
      if (user.username) {
        const basic = `${user.username}:${user.password ?? ""}`;
        headers.Authorization = `Basic ${Buffer.from(basic).toString("base64")}`;
      }
    }
    // createAgent
    if (cluster?.server?.startsWith("http:")) {
      if (!cluster.skipTLSVerify) {
        throw new Error("HTTP protocol is not allowed when skipTLSVerify is not set or false");
      }
      settings.kind = "http";
    }
    return { settings, headers };
  }

  /**
   * The token in `file`, re-read at most once a minute (bound service-account tokens rotate);
   * when a re-read fails, the last token read (or `fallback`) keeps being used.
   */
  #readToken(file: string, fallback: string | undefined): string | undefined {
    const now = this.now();
    const t = this.#token;
    if (t && t.file === file && now - t.readAt <= TOKEN_FILE_TTL_MS) return t.value;
    try {
      const value = fs.readFileSync(file).toString("utf-8");
      this.#token = { file, value, readAt: now };
      return value;
    } catch (e) {
      const last = t?.file === file ? t.value : fallback;
      if (last === undefined) throw e;
      return last;
    }
  }

  /** One keep-alive agent, replaced when the TLS material (re-read per request) changes. */
  #agentFor(settings: AgentSettings): http.Agent {
    if (this.#agent && sameSettings(this.#agent.settings, settings)) return this.#agent.agent;
    const options: https.AgentOptions = { keepAlive: true };
    if (settings.ca) options.ca = settings.ca;
    if (settings.cert) options.cert = settings.cert;
    if (settings.key) options.key = settings.key;
    if (settings.rejectUnauthorized !== undefined) {
      options.rejectUnauthorized = settings.rejectUnauthorized;
    }
    if (settings.servername) options.servername = settings.servername;
    const agent = settings.kind === "http"
      ? new http.Agent({ keepAlive: true })
      : new https.Agent(options);
    this.#agent = { settings, agent };
    return agent;
  }

  /** Closes the idle keep-alive connections of the agent and of the fetch client. */
  close(): void {
    this.#agent?.agent.destroy();
    this.#agent = null;
    this.#client?.client.close();
    this.#client = null;
  }
}
