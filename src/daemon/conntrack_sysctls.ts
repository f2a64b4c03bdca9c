/**
 * The conntrack sysctls kube-proxy sets at start (cmd/kube-proxy/app, pkg/proxy/conntrack), with
 * its flags, defaults and semantics, so a cutover keeps busy nodes from "table full":
 *
 * - `nf_conntrack_max` = max(--conntrack-max-per-core x CPUs, --conntrack-min), capped at 1,048,576,
 *   only ever raised; then the module's `hashsize` raised to a quarter of it when smaller;
 *   --conntrack-max-per-core 0 leaves both alone;
 * - `nf_conntrack_tcp_timeout_established`, `_close_wait`, `nf_conntrack_udp_timeout`,
 *   `_udp_timeout_stream` set when their flag is above 0 and they differ;
 * - `nf_conntrack_tcp_be_liberal` set to 1 with --conntrack-tcp-be-liberal.
 *
 * Unlike kube-proxy, which stops at the first failure, each one is tried and a failure is a
 * warning (a read-only /proc/sys in a container, or `nf_conntrack_max`, which only the initial
 * network namespace may write): the dataplane works without them. The timeouts are per network
 * namespace; `nf_conntrack_max` and `hashsize` are the host's.
 *
 * {@link planConntrackSysctls} is pure; {@link applyConntrackSysctls} reads and writes.
 * @module
 */

import type { Logger } from "../observe/log.ts";
import { readKernelFile, writeKernelFile } from "../platform/libc.ts";

/** kube-proxy's conntrack settings; 0 (or false) leaves a sysctl alone. */
export interface ConntrackSettings {
  readonly maxPerCore: number;
  readonly min: number;
  readonly tcpEstablishedTimeoutSeconds: number;
  readonly tcpCloseWaitTimeoutSeconds: number;
  readonly tcpBeLiberal: boolean;
  readonly udpTimeoutSeconds: number;
  readonly udpStreamTimeoutSeconds: number;
}

/** kube-proxy's defaults. */
export const KUBE_PROXY_CONNTRACK_DEFAULTS: ConntrackSettings = {
  maxPerCore: 32768,
  min: 131072,
  tcpEstablishedTimeoutSeconds: 24 * 3600,
  tcpCloseWaitTimeoutSeconds: 3600,
  tcpBeLiberal: false,
  udpTimeoutSeconds: 0,
  udpStreamTimeoutSeconds: 0,
};

/** kube-proxy caps the scaled maximum so high-core machines do not spend memory on it. */
const MAX_LIMIT = 1_048_576;

const NETFILTER = "/proc/sys/net/netfilter";
/** The module parameter behind the connection table's hash size. */
export const HASHSIZE_PATH = "/sys/module/nf_conntrack/parameters/hashsize";

/** One write to make: which file, the value, and why. */
export interface SysctlWrite {
  readonly path: string;
  readonly value: number;
  readonly from: number | null;
}

/** kube-proxy's getConntrackMax: 0 when --conntrack-max-per-core is 0. */
export function conntrackMax(settings: ConntrackSettings, cpus: number): number {
  if (settings.maxPerCore <= 0) return 0;
  const scaled = settings.maxPerCore * cpus;
  if (scaled > MAX_LIMIT) return MAX_LIMIT;
  return Math.max(scaled, settings.min);
}

/**
 * The writes kube-proxy's rules call for, given what the files hold now (null: unreadable). Pure.
 *
 * @example
 * ```ts
 * planConntrackSysctls(KUBE_PROXY_CONNTRACK_DEFAULTS, 2, (path) => current.get(path) ?? null);
 * // [{ path: "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established", value: 86400, … }]
 * ```
 */
export function planConntrackSysctls(
  settings: ConntrackSettings,
  cpus: number,
  read: (path: string) => number | null,
): SysctlWrite[] {
  const writes: SysctlWrite[] = [];
  const max = conntrackMax(settings, cpus);
  if (max > 0) {
    const path = `${NETFILTER}/nf_conntrack_max`;
    const current = read(path);
    // Only ever raised (a host tuned higher keeps its value).
    if (current === null || current < max) writes.push({ path, value: max, from: current });
    const hashsize = read(HASHSIZE_PATH);
    const want = Math.floor(max / 4);
    if (hashsize !== null && hashsize < want) {
      writes.push({ path: HASHSIZE_PATH, value: want, from: hashsize });
    }
  }
  const differing = (name: string, value: number) => {
    const path = `${NETFILTER}/${name}`;
    const current = read(path);
    if (current !== value) writes.push({ path, value, from: current });
  };
  if (settings.tcpEstablishedTimeoutSeconds > 0) {
    differing("nf_conntrack_tcp_timeout_established", settings.tcpEstablishedTimeoutSeconds);
  }
  if (settings.tcpCloseWaitTimeoutSeconds > 0) {
    differing("nf_conntrack_tcp_timeout_close_wait", settings.tcpCloseWaitTimeoutSeconds);
  }
  if (settings.tcpBeLiberal) differing("nf_conntrack_tcp_be_liberal", 1);
  if (settings.udpTimeoutSeconds > 0) {
    differing("nf_conntrack_udp_timeout", settings.udpTimeoutSeconds);
  }
  if (settings.udpStreamTimeoutSeconds > 0) {
    differing("nf_conntrack_udp_timeout_stream", settings.udpStreamTimeoutSeconds);
  }
  return writes;
}

/** The CPUs of the host (kube-proxy reads the online CPUs, not the process's cpuset). */
function hostCpus(): number {
  try {
    const online = readKernelFile("/sys/devices/system/cpu/online").trim();
    let n = 0;
    for (const range of online.split(",")) {
      const [a, b] = range.split("-").map(Number);
      n += b === undefined ? 1 : b - a + 1;
    }
    if (n > 0) return n;
  } catch { /* not Linux, or no sysfs */ }
  return navigator.hardwareConcurrency || 1;
}

function readInt(path: string): number | null {
  try {
    const n = Number(readKernelFile(path).trim());
    return Number.isInteger(n) ? n : null;
  } catch {
    return null;
  }
}

/**
 * Applies the settings at start: each write logged, each failure a warning. Never throws.
 * Returns what was written and what failed, for tests and /readyz.
 */
export function applyConntrackSysctls(
  settings: ConntrackSettings,
  log: Logger,
  io: {
    readonly read?: (path: string) => number | null;
    readonly write?: (path: string, value: number) => void;
    readonly cpus?: number;
  } = {},
): { written: SysctlWrite[]; failed: SysctlWrite[] } {
  const read = io.read ?? readInt;
  const write = io.write ?? ((path, value) => writeKernelFile(path, `${value}\n`));
  const written: SysctlWrite[] = [], failed: SysctlWrite[] = [];
  let writes: SysctlWrite[];
  try {
    writes = planConntrackSysctls(settings, io.cpus ?? hostCpus(), read);
  } catch (e) {
    log.warn("cannot read the conntrack sysctls; left as they are", { error: e as Error });
    return { written, failed };
  }
  for (const w of writes) {
    try {
      write(w.path, w.value);
      written.push(w);
      log.info("set conntrack sysctl", { path: w.path, value: w.value, was: w.from ?? "unknown" });
    } catch (e) {
      failed.push(w);
      log.warn("cannot set conntrack sysctl; left as it is", {
        path: w.path,
        value: w.value,
        was: w.from ?? "unknown",
        error: e as Error,
      });
    }
  }
  return { written, failed };
}
