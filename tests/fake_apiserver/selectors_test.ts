import { strictEqual as assertEquals } from "node:assert/strict";
import { parseFieldSelector, parseLabelSelector } from "./selectors.ts";

Deno.test("label selectors match as the API server's do", () => {
  const cases: [string, Record<string, string>, boolean][] = [
    ["app=web", { app: "web" }, true],
    ["app==web", { app: "web" }, true],
    ["app=web", { app: "db" }, false],
    ["app=web", {}, false],
    ["app!=web", {}, true],
    ["app!=web", { app: "web" }, false],
    ["app=web,tier=front", { app: "web", tier: "front" }, true],
    ["app=web,tier=front", { app: "web", tier: "back" }, false],
    ["env in (a, b)", { env: "b" }, true],
    ["env in (a,b)", { env: "c" }, false],
    ["env notin (a,b)", {}, true],
    ["env notin (a,b)", { env: "a" }, false],
    ["kubernetes.io/service-name", { "kubernetes.io/service-name": "x" }, true],
    ["!service.kubernetes.io/headless", { "service.kubernetes.io/headless": "" }, false],
    ["!service.kubernetes.io/headless", {}, true],
    ["", { any: "thing" }, true],
  ];
  for (const [sel, labels, want] of cases) {
    assertEquals(parseLabelSelector(sel)(labels), want, `${sel} on ${JSON.stringify(labels)}`);
  }
});

Deno.test("bad label selectors are refused with the bad part quoted", () => {
  for (const [sel, part] of [["app=we b", "app=we b"], ["a b c", "a b c"], ["-x=y", "-x"]]) {
    let message = "";
    try {
      parseLabelSelector(sel);
    } catch (e) {
      message = (e as Error).message;
    }
    if (!message.includes(`"${part}"`)) {
      throw new Error(`selector ${sel}: message ${JSON.stringify(message)} lacks "${part}"`);
    }
  }
});

Deno.test("field selectors support metadata.name and metadata.namespace only", () => {
  const fields = ["metadata.name", "metadata.namespace"];
  const f = { "metadata.name": "web", "metadata.namespace": "default" };
  assertEquals(parseFieldSelector("metadata.name=web", fields)(f), true, "name=");
  assertEquals(parseFieldSelector("metadata.namespace!=default", fields)(f), false, "ns!=");
  assertEquals(
    parseFieldSelector("metadata.name==web,metadata.namespace=default", fields)(f),
    true,
    "both",
  );
  let message = "";
  try {
    parseFieldSelector("spec.clusterIP=1.2.3.4", fields);
  } catch (e) {
    message = (e as Error).message;
  }
  assertEquals(message, "field label not supported: spec.clusterIP", "unsupported field");
});
