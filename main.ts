/**
 * svcgate CLI entry: flags -> config -> command. The only file that calls Deno.exit.
 * @module
 */

import { helpText, type Invocation, parseArgs, UsageError } from "./src/config/flags.ts";
import { VERSION } from "./src/version.ts";
import { createLogger } from "./src/observe/log.ts";
import { MetricsRegistry } from "./src/observe/metrics.ts";
import {
  buildDaemon,
  cleanupDataplane,
  pinVipsForConfig,
  renderForConfig,
} from "./src/daemon/compose.ts";

/**
 * The DNS workers' entry module. deploy/bundle.ts bundles it as a second entry, at the same path
 * beside this file's bundle but ending in .js.
 */
const dnsWorkerUrl = new URL(
  `./src/dns/serve/worker_main.${import.meta.url.endsWith(".ts") ? "ts" : "js"}`,
  import.meta.url,
);

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}

async function main(argv: string[]): Promise<number> {
  let inv: Invocation;
  try {
    inv = parseArgs(argv, { hostname: hostName() });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const cmd = e.command === null ? "" : `${e.command === "ipam-pin" ? "ipam pin" : e.command} `;
    console.error(`svcgate: ${e.message} (see 'svcgate ${cmd}--help')`);
    return 2;
  }
  if (inv.help || inv.command === "help") {
    console.log(helpText(inv.command));
    return 0;
  }
  const log = createLogger({ format: inv.config.logFormat, level: inv.config.logLevel });
  switch (inv.command) {
    case "version":
      console.log(`svcgate ${VERSION} (deno ${Deno.version.deno}, ${Deno.build.target})`);
      return 0;
    case "render": {
      const r = await renderForConfig(inv.config, log);
      console.log(r.text);
      for (const err of r.errors) console.error(err);
      return r.errors.length > 0 ? 1 : 0;
    }
    case "cleanup":
      await cleanupDataplane(log);
      return 0;
    case "ipam-pin": {
      const r = await pinVipsForConfig(inv.config, log);
      for (const err of r.errors) console.error(err);
      console.log(r.summary);
      return r.errors.length > 0 ? 1 : 0;
    }
    case "run": {
      const metrics = new MetricsRegistry();
      const daemon = await buildDaemon(inv.config, log, metrics, {
        dnsWorkerUrl: dnsWorkerUrl.href,
      });
      const stopped = Promise.withResolvers<void>();
      const onStop = (signal: string) => () => {
        log.info("stopping", { signal });
        // SIGTERM (systemd, kubelet) first serves a lame-duck period (--dns-lameduck).
        daemon.stop({ lameDuck: signal === "SIGTERM" }).then(stopped.resolve, stopped.reject);
      };
      Deno.addSignalListener("SIGTERM", onStop("SIGTERM"));
      Deno.addSignalListener("SIGINT", onStop("SIGINT"));
      Deno.addSignalListener("SIGHUP", () => {
        log.info("reloading", { signal: "SIGHUP" });
        daemon.reload();
      });
      await daemon.start();
      await stopped.promise;
      log.info("stopped");
      return 0;
    }
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`svcgate: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}
