import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { formatError } from "./validate.ts";

Deno.test("formatError joins where, path and message", () => {
  assertEquals(
    formatError({
      where: "services.yaml#3",
      path: "spec.ports[1].port",
      message: "70000 is not a port (1-65535)",
    }),
    "services.yaml#3 spec.ports[1].port: 70000 is not a port (1-65535)",
  );
  assertEquals(formatError({ where: "a.yaml#1", path: "", message: "m" }), "a.yaml#1: m");
  assertEquals(formatError({ where: "", path: "kind", message: "m" }), "kind: m");
});
