import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { Service, ServicePort } from "../model/types.ts";
import { type HealthCheckConfig, parseHealthCheck } from "./config.ts";
import { testService } from "../../tests/support/test_service.ts";
import { ip } from "../../tests/support/model_values.ts";

function svc(annotations: Record<string, string>, ports?: ServicePort[]): Service {
  return testService("default/web", {
    clusterIPs: [ip("198.19.0.10")],
    ports: ports ?? [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080 }],
    ipFamilies: [4],
    annotations,
  });
}

const HC = "svcgate.io/health-check";
const DEFAULTS = {
  intervalMs: 5000,
  timeoutMs: 1000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
};

Deno.test("parseHealthCheck: valid annotations", () => {
  const cases: [Record<string, string>, HealthCheckConfig | null][] = [
    [{}, null],
    [{ "other.io/x": "1" }, null],
    [{ [HC]: "tcp" }, { kind: "tcp", path: "", ...DEFAULTS }],
    [{ [HC]: "http" }, { kind: "http", path: "/", ...DEFAULTS }],
    [{ [HC]: " http:/healthz?full=1 " }, { kind: "http", path: "/healthz?full=1", ...DEFAULTS }],
    [
      {
        [HC]: "http:/ready",
        [`${HC}-interval`]: "2s",
        [`${HC}-timeout`]: "250ms",
        [`${HC}-healthy-threshold`]: "1",
        [`${HC}-unhealthy-threshold`]: "5",
        [`${HC}-port`]: "9000",
      },
      {
        kind: "http",
        path: "/ready",
        intervalMs: 2000,
        timeoutMs: 250,
        healthyThreshold: 1,
        unhealthyThreshold: 5,
        port: 9000,
      },
    ],
    // A short interval shrinks the default timeout with it.
    [
      { [HC]: "tcp", [`${HC}-interval`]: "500ms" },
      { kind: "tcp", path: "", ...DEFAULTS, intervalMs: 500, timeoutMs: 500 },
    ],
  ];
  for (const [annotations, config] of cases) {
    assertEquals(
      parseHealthCheck(svc(annotations)),
      { config, errors: [] },
      JSON.stringify(annotations),
    );
  }
});

Deno.test("parseHealthCheck: bad annotations are errors with the exact text, and no check", () => {
  const cases: [Record<string, string>, string[], ServicePort[]?][] = [
    [{ [HC]: "udp" }, [`default/web: annotation ${HC} "udp" is not one of tcp, http, http:/PATH`]],
    [{ [HC]: "HTTP" }, [
      `default/web: annotation ${HC} "HTTP" is not one of tcp, http, http:/PATH`,
    ]],
    [{ [HC]: "http:healthz" }, [
      `default/web: annotation ${HC} "http:healthz" has a path not starting with "/"`,
    ]],
    [{ [HC]: "http:" }, [`default/web: annotation ${HC} "http:" has a path not starting with "/"`]],
    [
      { [HC]: "http:/a b" },
      [`default/web: annotation ${HC} "http:/a b" has a path with spaces or characters other than printable ASCII`],
    ],
    [
      { [HC]: "tcp", [`${HC}-interval`]: "5 sec" },
      [`default/web: annotation ${HC}-interval "5 sec" is not a duration`],
    ],
    [{ [HC]: "tcp", [`${HC}-interval`]: "5" }, [
      `default/web: annotation ${HC}-interval "5" is not a duration`,
    ]],
    [{ [HC]: "tcp", [`${HC}-interval`]: "0s" }, [
      `default/web: annotation ${HC}-interval "0s" is not longer than zero`,
    ]],
    [
      { [HC]: "tcp", [`${HC}-interval`]: "50ms" },
      [`default/web: annotation ${HC}-interval "50ms" is shorter than the minimum 100ms`],
    ],
    [{ [HC]: "tcp", [`${HC}-timeout`]: "1 s" }, [
      `default/web: annotation ${HC}-timeout "1 s" is not a duration`,
    ]],
    [
      { [HC]: "tcp", [`${HC}-timeout`]: "10s" },
      [`default/web: annotation ${HC}-timeout "10s" is longer than the interval (5s)`],
    ],
    [
      { [HC]: "tcp", [`${HC}-healthy-threshold`]: "0" },
      [`default/web: annotation ${HC}-healthy-threshold "0" is not a whole number from 1 to 1000`],
    ],
    [
      { [HC]: "tcp", [`${HC}-unhealthy-threshold`]: "2.5" },
      [`default/web: annotation ${HC}-unhealthy-threshold "2.5" is not a whole number from 1 to 1000`],
    ],
    [
      { [HC]: "tcp", [`${HC}-unhealthy-threshold`]: "1001" },
      [`default/web: annotation ${HC}-unhealthy-threshold "1001" is not a whole number from 1 to 1000`],
    ],
    [{ [HC]: "tcp", [`${HC}-port`]: "70000" }, [
      `default/web: annotation ${HC}-port "70000" is not a port (1-65535)`,
    ]],
    [{ [HC]: "tcp", [`${HC}-port`]: "http" }, [
      `default/web: annotation ${HC}-port "http" is not a port (1-65535)`,
    ]],
    [
      { [HC]: "tcp", [`${HC}-intervall`]: "5s" },
      [`default/web: annotation ${HC}-intervall is not a known svcgate.io/health-check-* annotation`],
    ],
    [
      { [`${HC}-interval`]: "5s" },
      [`default/web: annotation ${HC}-interval is set but ${HC} is not`],
    ],
    [{ [HC]: "tcp" }, [`default/web: has no ports to check; set ${HC}-port`], []],
    [
      { [HC]: "tcp" },
      [`default/web: its first port is UDP; a tcp check needs ${HC}-port`],
      [{ name: "", protocol: "UDP", port: 53, targetPort: 53 }],
    ],
    // Several problems are all reported.
    [
      { [HC]: "ping", [`${HC}-interval`]: "soon", [`${HC}-healthy-threshold`]: "x" },
      [
        `default/web: annotation ${HC} "ping" is not one of tcp, http, http:/PATH`,
        `default/web: annotation ${HC}-interval "soon" is not a duration`,
        `default/web: annotation ${HC}-healthy-threshold "x" is not a whole number from 1 to 1000`,
      ],
    ],
  ];
  for (const [annotations, errors, ports] of cases) {
    assertEquals(
      parseHealthCheck(svc(annotations, ports)),
      { config: null, errors },
      JSON.stringify(annotations),
    );
  }
});

Deno.test("parseHealthCheck: a UDP service may be checked on an explicit TCP port", () => {
  const r = parseHealthCheck(
    svc({ [HC]: "tcp", [`${HC}-port`]: "8080" }, [{
      name: "",
      protocol: "UDP",
      port: 9090,
      targetPort: 9090,
    }]),
  );
  assertEquals(r, { config: { kind: "tcp", path: "", ...DEFAULTS, port: 8080 }, errors: [] });
});
