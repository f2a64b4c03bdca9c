/**
 * Real client resolvers and a real upstream for DNS tests in a lab: a lookup program built
 * against glibc, musl (musl-gcc) and Go's pure resolver (GODEBUG=netdns=go), each printing one
 * line per getaddrinfo/LookupHost call with its time; a knotd serving a root zone (so every other
 * name gets a real NXDOMAIN, as from a recursive resolver) in a lab namespace; and svcgate's query
 * count read from its own /metrics.
 * @module
 */

import type { Lab } from "../lab/lab.ts";
import { runCommand } from "../lab/lab.ts";

/** One lookup: its time, and what it found (sorted addresses, or the error's kind). */
export interface Lookup {
  readonly us: number;
  /** `198.18.100.80 2001:db8:100::80`, or `NONAME` (no such name), or `ERR <detail>`. */
  readonly result: string;
  /** The canonical name (C resolvers with AI_CANONNAME), "-" when not reported. */
  readonly canon: string;
}

const C_LOOKUP = String.raw`
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static int cmp(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int n = argc > 2 ? atoi(argv[2]) : 1;
  for (int i = 0; i < n; i++) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_CANONNAME;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = getaddrinfo(argv[1], NULL, &hints, &res);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long us = (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
    if (rc != 0) {
      if (rc == EAI_NONAME) printf("%ld - NONAME\n", us);
      else printf("%ld - ERR %d\n", us, rc);
      fflush(stdout);
      continue;
    }
    char addrs[64][INET6_ADDRSTRLEN];
    int k = 0;
    for (struct addrinfo *p = res; p && k < 64; p = p->ai_next) {
      char text[INET6_ADDRSTRLEN];
      const void *src = p->ai_family == AF_INET
        ? (const void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
        : (const void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
      inet_ntop(p->ai_family, src, text, sizeof text);
      int dup = 0;
      for (int j = 0; j < k; j++) if (strcmp(addrs[j], text) == 0) dup = 1;
      if (!dup) strcpy(addrs[k++], text);
    }
    qsort(addrs, k, sizeof addrs[0], cmp);
    printf("%ld %s", us, res->ai_canonname ? res->ai_canonname : "-");
    for (int j = 0; j < k; j++) printf(" %s", addrs[j]);
    printf("\n");
    fflush(stdout);
    freeaddrinfo(res);
  }
  return 0;
}
`;

const GO_LOOKUP = `package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	n := 1
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	r := &net.Resolver{PreferGo: true}
	for i := 0; i < n; i++ {
		t := time.Now()
		addrs, err := r.LookupHost(context.Background(), os.Args[1])
		us := time.Since(t).Microseconds()
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			fmt.Printf("%d - NONAME\\n", us)
			continue
		}
		if err != nil {
			fmt.Printf("%d - ERR %v\\n", us, err)
			continue
		}
		sort.Strings(addrs)
		fmt.Printf("%d - %s\\n", us, strings.Join(addrs, " "))
	}
}
`;

/** The lookup programs available here, by resolver name. */
export type Resolvers = Record<"glibc" | "musl" | "go", string | null>;

async function has(tool: string): Promise<boolean> {
  return (await runCommand(["sh", "-c", `command -v ${tool}`])).code === 0;
}

/**
 * Builds the lookup program for each resolver present (gcc for glibc, musl-gcc, go) into `dir`;
 * a missing toolchain gives null for that resolver.
 */
export async function buildResolvers(dir: string): Promise<Resolvers> {
  await Deno.writeTextFile(`${dir}/lookup.c`, C_LOOKUP);
  await Deno.writeTextFile(`${dir}/lookup.go`, GO_LOOKUP);
  const build = async (tool: string, cmd: string[], out: string, env: string[] = []) => {
    if (!await has(tool)) return null;
    const r = await runCommand(["env", ...env, ...cmd]);
    if (r.code !== 0) throw new Error(`Cannot build ${out} with ${tool}: ${r.stderr.trim()}`);
    return out;
  };
  return {
    glibc: await build(
      "gcc",
      ["gcc", "-O2", "-o", `${dir}/lookup-glibc`, `${dir}/lookup.c`],
      `${dir}/lookup-glibc`,
    ),
    musl: await build(
      "musl-gcc",
      ["musl-gcc", "-static", "-O2", "-o", `${dir}/lookup-musl`, `${dir}/lookup.c`],
      `${dir}/lookup-musl`,
    ),
    go: await build(
      "go",
      ["go", "build", "-o", `${dir}/lookup-go`, `${dir}/lookup.go`],
      `${dir}/lookup-go`,
      [`GOCACHE=${dir}/gocache`, `GOPATH=${dir}/gopath`, `HOME=${dir}`, "CGO_ENABLED=0"],
    ),
  };
}

/** Runs `count` lookups of `name` with a lookup program in namespace `ns`. */
export async function lookups(
  lab: Lab,
  ns: string,
  program: string,
  name: string,
  count = 1,
): Promise<Lookup[]> {
  const r = await lab.exec(ns, ["env", "GODEBUG=netdns=go", program, name, String(count)]);
  if (r.code !== 0) throw new Error(`${program} ${name} failed: ${r.stderr.trim()}`);
  return r.stdout.trim().split("\n").map((line) => {
    const [us, canon, ...rest] = line.split(" ");
    return { us: Number(us), canon, result: rest.join(" ") };
  });
}

/** A record of the upstream's root zone, as a zone-file line. */
export type ZoneLine = string;

/**
 * Starts knotd in namespace `ns` on `address`:53, authoritative for the root zone with
 * `records`: every other name is NXDOMAIN (as a recursive resolver would say). Killed with the
 * lab, or earlier through the returned process (`ip netns exec` becomes knotd).
 */
export async function startLabKnot(
  lab: Lab,
  ns: string,
  address: string,
  records: readonly ZoneLine[],
  dir: string,
): Promise<Deno.ChildProcess> {
  await Deno.writeTextFile(
    `${dir}/root.zone`,
    [
      "$ORIGIN .",
      "$TTL 60",
      ". 60 IN SOA ns.lab. hostmaster.lab. 1 7200 1800 86400 60",
      ". 60 IN NS ns.lab.",
      `ns.lab. 60 IN A ${address}`,
      ...records,
      "",
    ].join("\n"),
  );
  await Deno.writeTextFile(
    `${dir}/knot.conf`,
    [
      "server:",
      `    listen: ${address}@53`,
      `    rundir: "${dir}"`,
      "log:",
      "  - target: stderr",
      "    any: warning",
      "database:",
      `    storage: "${dir}"`,
      "zone:",
      "  - domain: .",
      `    file: "${dir}/root.zone"`,
      `    storage: "${dir}"`,
      "",
    ].join("\n"),
  );
  const child = lab.spawn(ns, ["knotd", "-c", `${dir}/knot.conf`], {
    stdout: "null",
    stderr: "inherit",
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await lab.exec(ns, ["dig", `@${address}`, "ns.lab", "A", "+time=1", "+tries=1"]);
    if (r.stdout.includes("NOERROR")) return child;
    if (Date.now() > deadline) throw new Error(`knotd in ${ns} did not answer: ${r.stdout}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** svcgate's own count of DNS queries answered (sum of svcgate_dns_requests_total). */
export async function dnsRequests(lab: Lab, metricsUrl: string): Promise<number> {
  const r = await lab.exec(lab.node.ns, ["curl", "-s", "-m", "2", metricsUrl]);
  let sum = 0;
  for (const line of r.stdout.split("\n")) {
    if (line.startsWith("svcgate_dns_requests_total{")) sum += Number(line.split(" ").pop());
  }
  return sum;
}

/** A counter of svcgate's /metrics (0 when absent). */
export async function metricValue(lab: Lab, metricsUrl: string, name: string): Promise<number> {
  const r = await lab.exec(lab.node.ns, ["curl", "-s", "-m", "2", metricsUrl]);
  const line = r.stdout.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(" ").pop());
}

/**
 * svcgate's query count once it holds still: the daemon moves its DNS counters to /metrics every
 * second, so it is read until two reads 1.1 s apart agree.
 */
export async function settledRequests(lab: Lab, metricsUrl: string): Promise<number> {
  let last = await dnsRequests(lab, metricsUrl);
  for (;;) {
    await new Promise((r) => setTimeout(r, 1100));
    const now = await dnsRequests(lab, metricsUrl);
    if (now === last) return now;
    last = now;
  }
}

/** The resolv.conf kubelet writes for a pod in `namespace` whose clusterDNS is `nameserver`. */
export function kubeletResolvConf(namespace: string, nameserver: string): string {
  return [
    `search ${namespace}.svc.cluster.local svc.cluster.local cluster.local`,
    `nameserver ${nameserver}`,
    "options ndots:5",
    "",
  ].join("\n");
}

/**
 * A ClusterIP Service with one endpoint, as manifest text: in standalone mode the endpoint's
 * client is in the service's namespace.
 */
export function serviceManifest(
  namespace: string,
  name: string,
  clusterIP: string,
  endpoint: string,
  port = 80,
): string {
  return `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  clusterIP: ${clusterIP}
  ports: [{ name: http, port: ${port} }]
---
apiVersion: v1
kind: Endpoints
metadata: { name: ${name}, namespace: ${namespace} }
subsets:
  - addresses: [{ ip: ${endpoint} }]
    ports: [{ name: http, port: ${port} }]
`;
}
