/**
 * A Service's cluster IPs and IP families, checked as Kubernetes does: at most one address per
 * family, "None" alone for headless, none for ExternalName, families that match the addresses,
 * and the family policy. Pure.
 * @module
 */

import { canonicalIp, ipFamilyOf, type IpText } from "../../model/ip.ts";
import type { IpFamily, ServiceType } from "../../model/types.ts";
import { type Ctx, show } from "./validate.ts";

const IP_FAMILY_POLICIES = ["SingleStack", "PreferDualStack", "RequireDualStack"] as const;

/** True for SingleStack, PreferDualStack and RequireDualStack. */
export function isIpFamilyPolicy(v: unknown): v is (typeof IP_FAMILY_POLICIES)[number] {
  return (IP_FAMILY_POLICIES as readonly unknown[]).includes(v);
}

/** A Service's cluster IPs, canonical, and whether it is headless. */
export interface ClusterIpResult {
  readonly clusterIPs: IpText[];
  readonly headless: boolean;
  /** Path of each entry of clusterIPs, for later messages. */
  readonly paths: string[];
}

/** Reads `spec.clusterIP` and `spec.clusterIPs` (which must agree on the first address). */
export function readClusterIps(
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
  const clusterIPs: IpText[] = [], paths: string[] = [];
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

/** Reads `spec.ipFamilies` and `spec.ipFamilyPolicy` into the families the Service gets. */
export function readIpFamilies(
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
