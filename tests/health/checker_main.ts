/**
 * Runs a {@link HealthChecker} with the real probes on the services and endpoint sets given as JSON
 * in the first argument, and prints one JSON line per event on stdout:
 * - `{"event":"verdicts","at":MS,"verdicts":{"default/web|198.18.0.10|8080":"healthy",...}}`
 *   whenever any verdict changes (polled every 20 ms);
 * - `{"event":"change","at":MS,"notReady":{"default/web":["198.18.0.11"]}}` from onChange, with
 *   the addresses apply() marks not ready at that moment.
 *
 * The lab test runs it inside the node namespace, where pod addresses are reachable.
 * Usage: deno run -A checker_main.ts '{"services":[...],"endpointSets":[...]}'
 * @module
 */

import { HealthChecker } from "../../src/health/checker.ts";
import type { EndpointSet, Service } from "../../src/model/types.ts";

const input = JSON.parse(Deno.args[0]) as { services: Service[]; endpointSets: EndpointSet[] };
const print = (obj: Record<string, unknown>) =>
  console.log(JSON.stringify({ ...obj, at: Date.now() }));

const checker = new HealthChecker({
  onChange() {
    const notReady: Record<string, string[]> = {};
    for (const set of checker.apply(input.endpointSets)) {
      const key = `${set.namespace}/${set.serviceName}`;
      for (const ep of set.endpoints) if (!ep.ready) (notReady[key] ??= []).push(ep.address);
    }
    print({ event: "change", notReady });
  },
});
const problems = checker.update(input.services, input.endpointSets);
if (problems.length > 0) {
  console.error(problems.join("\n"));
  Deno.exit(2);
}

let last = "";
setInterval(() => {
  const verdicts: Record<string, string> = {};
  for (const s of checker.status()) verdicts[`${s.service}|${s.address}|${s.port}`] = s.verdict;
  const text = JSON.stringify(verdicts);
  if (text !== last) {
    last = text;
    print({ event: "verdicts", verdicts });
  }
}, 20);
