/**
 * Where the Kubernetes API is and how to authenticate to it: a kubeconfig file (`--kubeconfig`
 * or KUBECONFIG), else the in-cluster service account, with `--master` overriding the server.
 * The kubeconfig is parsed as client-node's KubeConfig.loadFromFile does (its own `config_types`
 * conversions, relative certificate paths resolved against the file's folder), without importing
 * client-node's KubeConfig, which loads the whole generated API and every auth plugin;
 * {@link KubeAccess} does TLS and auth, and falls back to client-node for exec and other plugins.
 * This module chooses what to load and explains failures.
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { newClusters, newContexts, newUsers } from "@kubernetes/client-node/dist/config_types.js";
import {
  type Cluster,
  type Context,
  KubeAccess,
  type KubeUser,
  needsPlugins,
  type User,
} from "./kube_access.ts";

/** Default folder of the in-cluster service-account token, CA bundle and namespace. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Inputs of {@link loadKubeConfig}; everything the environment would give is injectable. */
export interface KubeConnectionOptions {
  /** `--kubeconfig`; wins over KUBECONFIG. */
  readonly kubeconfigPath?: string;
  /** `--master`: replaces the server of the selected cluster (or is the server when alone). */
  readonly master?: string;
  /** Environment to read KUBECONFIG and KUBERNETES_SERVICE_HOST/PORT from; default Deno.env. */
  readonly env?: (name: string) => string | undefined;
  /** Where the service-account files are; default {@link SERVICE_ACCOUNT_DIR}. */
  readonly serviceAccountDir?: string;
}

/** How the connection was configured, for logs and readiness detail. */
export interface KubeConnection {
  /** TLS and auth for requests: client-node's Watch and `listRaw` take it as config. */
  readonly config: KubeAccess;
  /** API server URL. */
  readonly server: string;
  /** Where the settings came from. */
  readonly origin: "kubeconfig" | "in-cluster" | "master";
  /** The kubeconfig path(s) read, when origin is "kubeconfig". */
  readonly path?: string;
  /** Kind of credentials presented. */
  readonly auth: "token" | "token-file" | "client-certificate" | "exec" | "basic" | "none";
  /** False when the kubeconfig sets insecure-skip-tls-verify. */
  readonly verifyTls: boolean;
  /**
   * True when requests go through client-node's full KubeConfig (exec and auth-provider plugins,
   * proxy-url): the whole package is loaded on the first request.
   */
  readonly viaClientNode: boolean;
}

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function authKind(user: User | null): KubeConnection["auth"] {
  if (!user) return "none";
  if (user.token) return "token";
  if (user.authProvider?.config?.tokenFile) return "token-file";
  if (user.certData || user.certFile) return "client-certificate";
  if (user.exec) return "exec";
  if (user.username) return "basic";
  return "none";
}

/** Parsed kubeconfig data, as KubeConfig holds it. */
interface Loaded {
  clusters: Cluster[];
  users: KubeUser[];
  contexts: Context[];
  currentContext: string;
}

/** KubeConfig.loadFromFile: YAML (or JSON), client-node's conversions, absolute paths. */
function loadFromFile(file: string): Loaded {
  const root = path.dirname(file);
  const text = fs.readFileSync(file).toString("utf-8");
  // deno-lint-ignore no-explicit-any
  const obj: any = parseYaml(text, { logLevel: "error" });
  const clusters = newClusters(obj.clusters);
  const contexts = newContexts(obj.contexts);
  const rawUsers: unknown[] = Array.isArray(obj.users) ? obj.users : [];
  const users: KubeUser[] = newUsers(obj.users).map((u, i) => {
    // newUsers read `token-file` once; remember it so that a rotated token is picked up.
    const raw = (rawUsers[i] as { user?: Record<string, unknown> } | undefined)?.user;
    const tokenFile = raw?.["token-file"];
    return u.token && !raw?.token && typeof tokenFile === "string" ? { ...u, tokenFile } : u;
  });
  const abs = (f: string) => path.isAbsolute(f) ? f : path.join(root, f);
  for (const c of clusters) if (c.caFile) c.caFile = abs(c.caFile);
  for (const u of users as User[]) {
    if (u.certFile) u.certFile = abs(u.certFile);
    if (u.keyFile) u.keyFile = abs(u.keyFile);
  }
  return { clusters, users, contexts, currentContext: obj["current-context"] };
}

/** KubeConfig.mergeConfig(other, true): the first file's current-context; duplicates throw. */
function mergeConfig(into: Loaded, other: Loaded): void {
  const add = <T extends { name: string }>(list: T[], items: T[], what: string) => {
    for (const item of items) {
      if (list.some((x) => x.name === item.name)) {
        throw new Error(`Duplicate ${what}: ${item.name}`);
      }
      list.push(item);
    }
  };
  add(into.clusters, other.clusters, "cluster");
  add(into.users, other.users, "user");
  add(into.contexts, other.contexts, "context");
}

function checkServerUrl(server: string, what: string): void {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new Error(`Cannot use ${what} "${server}": it is not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new Error(`Cannot use ${what} "${server}": the scheme must be https or http`);
  }
}

/**
 * Loads the connection settings. Throws an Error saying what was attempted and why it failed
 * (missing file, no current context, a plain-HTTP server without insecure-skip-tls-verify, which
 * client-node would refuse on every request).
 *
 * @example
 * ```ts
 * const conn = loadKubeConfig({ kubeconfigPath: "/etc/svcgate/kubeconfig" });
 * console.log(conn.server, conn.auth);
 * ```
 */
export function loadKubeConfig(opts: KubeConnectionOptions = {}): KubeConnection {
  const env = opts.env ?? ((name: string) => Deno.env.get(name));
  let kc: KubeAccess;
  let origin: KubeConnection["origin"];
  let path: string | undefined;
  const fromEnv = env("KUBECONFIG");
  const paths = opts.kubeconfigPath !== undefined
    ? [opts.kubeconfigPath]
    : (fromEnv ?? "").split(":").filter((p) => p !== "");
  const host = env("KUBERNETES_SERVICE_HOST");
  const port = env("KUBERNETES_SERVICE_PORT");
  if (paths.length > 0) {
    origin = "kubeconfig";
    path = paths.join(":");
    const flag = opts.kubeconfigPath !== undefined ? "--kubeconfig" : "KUBECONFIG";
    let merged: Loaded | undefined;
    for (const p of paths) {
      let one: Loaded;
      try {
        one = loadFromFile(p);
      } catch (e) {
        throw new Error(`Cannot load ${flag} "${p}": ${(e as Error).message}`);
      }
      if (merged) mergeConfig(merged, one);
      else merged = one;
    }
    kc = new KubeAccess(merged!);
    if (!kc.getCurrentContext()) {
      throw new Error(`Cannot use ${flag} "${path}": it sets no current-context`);
    }
    if (!kc.getCurrentCluster() && opts.master === undefined) {
      throw new Error(
        `Cannot use ${flag} "${path}": current-context "${kc.getCurrentContext()}" names no known cluster`,
      );
    }
  } else if (host && port) {
    origin = "in-cluster";
    const dir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
    const tokenFile = `${dir}/token`, caFile = `${dir}/ca.crt`;
    for (const f of [tokenFile, caFile]) {
      if (!fileExists(f)) {
        throw new Error(
          `Cannot use the in-cluster service account (KUBERNETES_SERVICE_HOST="${host}"): "${f}" does not exist`,
        );
      }
    }
    const h = host.includes(":") ? `[${host}]` : host;
    // Always https: an API server reached through the kubernetes Service serves TLS. The token
    // file is re-read (KubeAccess, once a minute) as bound service-account tokens rotate.
    kc = new KubeAccess({
      clusters: [{
        name: "in-cluster",
        server: `https://${h}:${port}`,
        caFile,
        skipTLSVerify: false,
      }],
      users: [{
        name: "in-cluster",
        authProvider: { name: "tokenFile", config: { tokenFile } },
      }],
      contexts: [{ name: "in-cluster", cluster: "in-cluster", user: "in-cluster" }],
      currentContext: "in-cluster",
    });
  } else if (opts.master !== undefined) {
    origin = "master";
    kc = new KubeAccess({
      clusters: [{ name: "master", server: opts.master, skipTLSVerify: false }],
      users: [{ name: "anonymous" }],
      contexts: [{ name: "master", cluster: "master", user: "anonymous" }],
      currentContext: "master",
    });
  } else {
    throw new Error(
      "Cannot connect to Kubernetes: no --kubeconfig, KUBECONFIG is unset, and this is not a pod " +
        "(KUBERNETES_SERVICE_HOST is unset); pass --kubeconfig or --master",
    );
  }
  if (opts.master !== undefined) {
    checkServerUrl(opts.master, "--master");
    const current = kc.getCurrentCluster();
    if (current) {
      const replaced: Cluster = { ...current, server: opts.master.replace(/\/+$/, "") };
      kc.clusters = kc.clusters.map((c) => c.name === current.name ? replaced : c);
    } else {
      // The context names a cluster the kubeconfig lacks: --master supplies it.
      const ctx = kc.getContextObject(kc.getCurrentContext());
      kc.clusters = [...kc.clusters, {
        name: ctx?.cluster ?? "master",
        server: opts.master,
        skipTLSVerify: false,
      }];
    }
  }
  const cluster = kc.getCurrentCluster()!;
  checkServerUrl(cluster.server, origin === "master" ? "--master" : "API server");
  if (cluster.server.startsWith("http:") && !cluster.skipTLSVerify) {
    throw new Error(
      `Cannot use API server "${cluster.server}": plain HTTP is refused unless the kubeconfig ` +
        `cluster sets insecure-skip-tls-verify: true`,
    );
  }
  return {
    config: kc,
    server: cluster.server,
    origin,
    path,
    auth: authKind(kc.getCurrentUser()),
    verifyTls: !cluster.skipTLSVerify,
    viaClientNode: needsPlugins(kc.getCurrentUser(), cluster),
  };
}
