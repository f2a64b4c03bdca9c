/**
 * The node's resolv.conf as svcgate's upstreams (issue 15): which file (`--resolv-conf`, else
 * systemd-resolved's list of real upstreams when it exists, else /etc/resolv.conf), its lines read
 * with a warning for each one that is not understood, and svcgate's own addresses removed, since a
 * node that follows the README points its resolv.conf at svcgate. Pure: the edge (server.ts,
 * host_watch.ts) reads the files and the interfaces.
 * @module
 */

import { canonicalIp, type IpText, parseIp } from "../../model/ip.ts";
import { parseUpstream, type Upstream } from "./upstream.ts";

/** systemd-resolved's list of the real upstreams (what kubelet uses on such a node). */
export const SYSTEMD_RESOLV_CONF = "/run/systemd/resolve/resolv.conf";
/** The classic file. */
export const ETC_RESOLV_CONF = "/etc/resolv.conf";

/** What a resolv.conf says, and what in it could not be read. */
export interface ResolvConf {
  /** `nameserver` addresses, in order, canonical, zone ids dropped. */
  readonly nameservers: readonly IpText[];
  /** One line per line not understood, naming the file and the line. */
  readonly warnings: readonly string[];
}

/** The keywords of resolv.conf(5) (and `lookup`/`family` of the BSDs): not warned about. */
const KEYWORDS = new Set([
  "nameserver",
  "search",
  "domain",
  "options",
  "sortlist",
  "lookup",
  "family",
]);

/**
 * Reads a resolv.conf's text. Never throws: a line it cannot read is a warning naming `path` and
 * the line number, quoting the line.
 *
 * @example
 * ```ts
 * parseResolvConfFile("nameserver 198.18.0.53\n", "/etc/resolv.conf").nameservers; // ["198.18.0.53"]
 * ```
 */
export function parseResolvConfFile(text: string, path: string): ResolvConf {
  const nameservers: IpText[] = [];
  const warnings: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (line === "") return;
    const [word, ...rest] = line.split(/\s+/);
    const where = `${path} line ${i + 1}`;
    if (!KEYWORDS.has(word)) {
      warnings.push(
        `${where}: ignored ${JSON.stringify(raw.trim().slice(0, 80))}: not a resolv.conf keyword`,
      );
      return;
    }
    if (word !== "nameserver") return;
    const ip = rest.length === 1 ? canonicalIp(rest[0].replace(/%.*$/, "")) : null;
    if (!ip) {
      warnings.push(
        `${where}: ignored ${
          JSON.stringify(raw.trim().slice(0, 80))
        }: a nameserver is one IP address`,
      );
      return;
    }
    if (!nameservers.includes(ip)) nameservers.push(ip);
  });
  return { nameservers, warnings };
}

/** What the edge found out about the files. */
export interface ResolvConfFacts {
  /** `--resolv-conf`, when given. */
  readonly flag?: string;
  /** systemd-resolved's file exists. */
  readonly systemdExists: boolean;
  /**
   * /etc/resolv.conf is a mount point of its own: this process runs in a network namespace
   * (`ip netns exec` mounts /etc/netns/<ns>/resolv.conf there) or a container that was given its
   * resolver configuration; systemd-resolved's file then describes another namespace's network.
   */
  readonly etcMounted: boolean;
}

/**
 * The file the upstreams come from: `--resolv-conf`; else systemd-resolved's real upstreams when
 * that file exists (as kubelet on such a node), unless /etc/resolv.conf was mounted for this
 * namespace; else /etc/resolv.conf.
 */
export function chooseResolvConf(facts: ResolvConfFacts): string {
  if (facts.flag) return facts.flag;
  return facts.systemdExists && !facts.etcMounted ? SYSTEMD_RESOLV_CONF : ETC_RESOLV_CONF;
}

/** True when /proc/self/mountinfo (its text) has a mount at `path`. */
export function isMountPoint(mountinfo: string, path: string): boolean {
  // Field 5 is the mount point, with spaces and the like escaped as octal (\040).
  return mountinfo.split("\n").some((line) => line.split(" ")[4] === path);
}

/** svcgate's own listening addresses, which must never be its upstreams. */
export interface OwnAddresses {
  /** The DNS port: a nameserver line means port 53, so only a bind on 53 can be svcgate. */
  readonly port: number;
  /** The bind address, and with a wildcard bind every address of the node. */
  readonly addresses: readonly string[];
}

/** The upstreams a resolv.conf gives, and the nameservers dropped as svcgate's own. */
export interface ResolvUpstreams {
  readonly upstreams: readonly Upstream[];
  readonly removed: readonly IpText[];
}

/** The nameservers of a resolv.conf on port 53, minus svcgate's own addresses. */
export function upstreamsOf(conf: ResolvConf, own: OwnAddresses): ResolvUpstreams {
  const mine = new Set(
    own.port === 53 ? own.addresses.map((a) => canonicalIp(a.replace(/%.*$/, ""))) : [],
  );
  const upstreams: Upstream[] = [];
  const removed: IpText[] = [];
  for (const ip of conf.nameservers) {
    if (mine.has(ip)) {
      removed.push(ip);
      continue;
    }
    const u = parseUpstream(parseIp(ip)!.family === 6 ? `[${ip}]:53` : `${ip}:53`);
    if (typeof u !== "string") upstreams.push(u);
  }
  return { upstreams, removed };
}

/**
 * The one line `svcgate run` fails with when a resolv.conf leaves no upstream and no `--upstream`
 * was given: which file, why, and what to do.
 */
export function noUpstreamMessage(path: string, found: ResolvUpstreams | string): string {
  const why = typeof found === "string"
    ? `cannot read ${path} (${found})`
    : found.removed.length > 0
    ? `${path} names only svcgate itself (${found.removed.join(", ")})`
    : `${path} names no nameserver`;
  return `Cannot forward DNS: ${why}; give the node's real resolvers with --upstream IP[:PORT] ` +
    `or --resolv-conf PATH (on systemd-resolved nodes ${SYSTEMD_RESOLV_CONF})`;
}

/** The upstream lists as text, for a log line saying what changed. */
export function upstreamText(upstreams: readonly Upstream[]): string {
  return upstreams.map((u) => u.text).join(",") || "none";
}
