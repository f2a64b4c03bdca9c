/**
 * Entry module of a DNS worker: DnsServer starts one Worker per engine from this file, and
 * deploy/bundle.ts bundles it as a second entry beside the CLI's. It loads only the DNS engine,
 * not the daemon.
 * @module
 */

import { runDnsWorker } from "./worker.ts";

if (!("WorkerGlobalScope" in globalThis)) {
  throw new Error("Cannot run the DNS worker entry on the main thread: DnsServer starts it");
}
runDnsWorker();
