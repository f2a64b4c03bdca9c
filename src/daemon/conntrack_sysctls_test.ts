import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  applyConntrackSysctls,
  conntrackMax,
  type ConntrackSettings,
  HASHSIZE_PATH,
  KUBE_PROXY_CONNTRACK_DEFAULTS as D,
  planConntrackSysctls,
} from "./conntrack_sysctls.ts";
import { silentLogger } from "../observe/log.ts";

const NF = "/proc/sys/net/netfilter/nf_conntrack_";

Deno.test("conntrackMax: kube-proxy's getConntrackMax", () => {
  // [max per core, min, cpus, max]
  const table: [number, number, number, number][] = [
    [32768, 131072, 2, 131072], // the floor wins on small machines
    [32768, 131072, 8, 262144],
    [32768, 131072, 64, 1048576], // capped
    [0, 131072, 8, 0], // 0: leave alone
    [32768, 0, 1, 32768],
  ];
  for (const [maxPerCore, min, cpus, max] of table) {
    assertEquals(
      conntrackMax({ ...D, maxPerCore, min }, cpus),
      max,
      `${maxPerCore} ${min} ${cpus}`,
    );
  }
});

Deno.test("planConntrackSysctls: what kube-proxy writes, given what the files hold", () => {
  const host = {
    [`${NF}max`]: 65536,
    [HASHSIZE_PATH]: 16384,
    [`${NF}tcp_timeout_established`]: 432000,
    [`${NF}tcp_timeout_close_wait`]: 60,
    [`${NF}tcp_be_liberal`]: 0,
    [`${NF}udp_timeout`]: 30,
    [`${NF}udp_timeout_stream`]: 120,
  } as Record<string, number>;
  const show = (settings: ConntrackSettings, files: Record<string, number | null> = host) =>
    planConntrackSysctls(settings, 2, (p) => files[p] ?? null).map((w) =>
      `${w.path.replace(NF, "").replace(HASHSIZE_PATH, "hashsize")}=${w.value}`
    );
  // [what, settings, files, writes]
  const table: [string, ConntrackSettings, Record<string, number | null>, string[]][] = [
    ["kube-proxy's defaults", D, host, [
      "max=131072",
      "hashsize=32768",
      "tcp_timeout_established=86400",
      "tcp_timeout_close_wait=3600",
    ]],
    ["a host tuned higher keeps its max and hash size", D, {
      ...host,
      [`${NF}max`]: 262144,
      [HASHSIZE_PATH]: 262144,
    }, [
      "tcp_timeout_established=86400",
      "tcp_timeout_close_wait=3600",
    ]],
    ["values already right: nothing", D, {
      ...host,
      [`${NF}max`]: 131072,
      [HASHSIZE_PATH]: 32768,
      [`${NF}tcp_timeout_established`]: 86400,
      [`${NF}tcp_timeout_close_wait`]: 3600,
    }, []],
    [
      "0 leaves every sysctl alone",
      {
        ...D,
        maxPerCore: 0,
        tcpEstablishedTimeoutSeconds: 0,
        tcpCloseWaitTimeoutSeconds: 0,
      },
      host,
      [],
    ],
    [
      "be liberal, UDP timeouts",
      {
        ...D,
        maxPerCore: 0,
        tcpEstablishedTimeoutSeconds: 0,
        tcpCloseWaitTimeoutSeconds: 0,
        tcpBeLiberal: true,
        udpTimeoutSeconds: 60,
        udpStreamTimeoutSeconds: 300,
      },
      host,
      ["tcp_be_liberal=1", "udp_timeout=60", "udp_timeout_stream=300"],
    ],
    ["an unreadable max is written; an unreadable hash size is left", D, {
      ...host,
      [`${NF}max`]: null,
      [HASHSIZE_PATH]: null,
    }, [
      "max=131072",
      "tcp_timeout_established=86400",
      "tcp_timeout_close_wait=3600",
    ]],
  ];
  for (const [what, settings, files, writes] of table) {
    assertEquals(show(settings, files), writes, what);
  }
});

Deno.test("applyConntrackSysctls: each write tried; failures are warnings, never thrown", () => {
  const written: string[] = [];
  const r = applyConntrackSysctls({ ...D, min: 300000 }, silentLogger, {
    cpus: 2,
    read: (p) => (p === HASHSIZE_PATH ? 262144 : p.endsWith("max") ? 262144 : 1),
    write: (p, v) => {
      if (p.endsWith("nf_conntrack_max")) throw new Deno.errors.PermissionDenied("read-only");
      written.push(`${p}=${v}`);
    },
  });
  assertEquals(r.failed.map((w) => w.path), [`${NF}max`]);
  assertEquals(written, [`${NF}tcp_timeout_established=86400`, `${NF}tcp_timeout_close_wait=3600`]);
});
