/**
 * One list page as raw JSON. The connection's config (`KubeAccess`, or client-node's
 * KubeConfig) supplies the TLS material and the auth headers (token, token file, client
 * certificate, exec plugin). The runtime's fetch carries the request; node:https does where
 * only it can (credential plugins, insecure-skip-tls-verify, tls-server-name): in Deno it keeps
 * a big download's buffers. The JSON is handed on as parsed, without the generated client's
 * typed deserialization (measured in ../README.md).
 * @module
 */

import * as http from "node:http";
import * as https from "node:https";
import { Buffer } from "node:buffer";
import { headersToRecord, type KubeClientConfig, type NativeFetchInit } from "./kube_access.ts";
import type { ListPage } from "./reflector.ts";

/** An HTTP error from the API server, shaped like client-node's (`code` = status). */
export class ApiStatusError extends Error {
  constructor(readonly code: number, readonly body: string, url: string) {
    let message = "";
    try {
      message = JSON.parse(body)?.message ?? "";
    } catch {
      message = body.slice(0, 200);
    }
    super(`GET ${url}: HTTP ${code}${message ? `: ${message}` : ""}`);
    this.name = "ApiStatusError";
  }
}

/**
 * GETs `path` with `query` and returns the list's items and metadata.
 *
 * @example
 * ```ts
 * const page = await listRaw(kc, "/api/v1/services", { limit: 500 }, AbortSignal.timeout(60_000));
 * ```
 */
export async function listRaw(
  kc: KubeClientConfig,
  path: string,
  query: Record<string, string | number | undefined>,
  signal: AbortSignal,
): Promise<ListPage> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("Cannot list: the kubeconfig has no current cluster");
  const url = new URL(cluster.server.replace(/\/+$/, "") + path);
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
  }
  const native = await kc.fetchInit?.() ?? null;
  const text = native ? await getNative(url, native, signal) : await getNode(kc, url, signal);
  let list: { items?: unknown[]; metadata?: { resourceVersion?: string; continue?: string } };
  try {
    list = JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot parse the list from "${url.href}": ${(e as Error).message}`);
  }
  return {
    items: Array.isArray(list.items) ? list.items : [],
    metadata: {
      resourceVersion: list.metadata?.resourceVersion,
      _continue: list.metadata?.continue,
    },
  };
}

/**
 * GETs one object at `path` as a list of it (none when it does not exist, HTTP 404), carrying
 * the object's resourceVersion: a reflector of a single object then needs only `get` and
 * `watch` (this node's Node, with RBAC that grants no `list`).
 *
 * @example
 * ```ts
 * const page = await getRawAsList(kc, "/api/v1/nodes/node-a", AbortSignal.timeout(60_000));
 * ```
 */
export async function getRawAsList(
  kc: KubeClientConfig,
  path: string,
  signal: AbortSignal,
): Promise<ListPage> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("Cannot get: the kubeconfig has no current cluster");
  const url = new URL(cluster.server.replace(/\/+$/, "") + path);
  const native = await kc.fetchInit?.() ?? null;
  let text: string;
  try {
    text = native ? await getNative(url, native, signal) : await getNode(kc, url, signal);
  } catch (e) {
    if (e instanceof ApiStatusError && e.code === 404) {
      return { items: [], metadata: { resourceVersion: "" } };
    }
    throw e;
  }
  let obj: { metadata?: { resourceVersion?: string } };
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot parse the object from "${url.href}": ${(e as Error).message}`);
  }
  return { items: [obj], metadata: { resourceVersion: obj.metadata?.resourceVersion ?? "" } };
}

/** The body of a GET through the runtime's fetch. */
async function getNative(url: URL, init: NativeFetchInit, signal: AbortSignal): Promise<string> {
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { accept: "application/json", ...init.headers },
      signal,
      ...(init.client ? { client: init.client } : {}),
    });
  } catch (e) {
    if (signal.aborted) throw e;
    // fetch says only "fetch failed"; the cause says what (connection refused, TLS...).
    const cause = (e as Error).cause;
    throw new Error(cause instanceof Error ? cause.message : (e as Error).message, { cause: e });
  }
  const body = await response.text();
  if (response.status !== 200) throw new ApiStatusError(response.status, body, url.href);
  return body;
}

/** The body of a GET through node:http(s), with the config's agent. */
async function getNode(kc: KubeClientConfig, url: URL, signal: AbortSignal): Promise<string> {
  const init = await kc.applyToFetchOptions({});
  const headers: Record<string, string> = {
    accept: "application/json",
    ...headersToRecord(init.headers),
  };
  const mod = url.protocol === "https:" ? https : http;
  return await new Promise<string>((resolve, reject) => {
    const req = mod.request(url, {
      method: "GET",
      agent: init.agent as http.Agent,
      headers,
      signal,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode !== 200) reject(new ApiStatusError(res.statusCode ?? 0, body, url.href));
        else resolve(body);
      });
    });
    req.on("error", reject);
    req.end();
  });
}
