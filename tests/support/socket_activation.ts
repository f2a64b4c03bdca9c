/**
 * svcgate under socket activation in a lab, as systemd's `svcgate.socket` runs it: the UDP and
 * TCP sockets on the DNS address are opened by `systemd-socket-activate` (systemd's own tool; one
 * per protocol, the second passing the first's descriptor on), and a supervisor shell holds them
 * and starts svcgate again whenever it exits, each time with `LISTEN_PID` set to the new
 * process (what systemd does between fork and exec), so queries wait in the kernel while svcgate
 * restarts. `systemd-socket-activate` starts its command on the first datagram: {@link
 * startSocketActivated} sends one (a DNS query, answered by the first svcgate).
 * @module
 */

import type { Lab } from "../lab/lab.ts";
import { collectLines, waitFor } from "../daemon/harness.ts";

/** svcgate processes started one after another on the same sockets. */
export interface SocketActivated {
  /** Log lines of every svcgate so far (stderr). */
  readonly log: string[];
  /** The running svcgate's process id (read from the supervisor's pid file). */
  pid(): Promise<number>;
  /** SIGTERM to the running svcgate; resolves once the next one runs (its pid is new). */
  restart(): Promise<void>;
  /** Stops the supervisor after the running svcgate; resolves when everything exited. */
  stop(): Promise<void>;
}

/**
 * Starts `argv` (svcgate's command line, `run` and its flags) under a socket holder on
 * `address:port` in the lab's node namespace; `dir` holds the supervisor's files.
 */
export async function startSocketActivated(
  lab: Lab,
  options: {
    readonly argv: readonly string[];
    readonly address: string;
    readonly port: number;
    readonly dir: string;
    readonly env?: Readonly<Record<string, string>>;
  },
): Promise<SocketActivated> {
  const { dir, address, port } = options;
  const pidFile = `${dir}/svcgate.pid`;
  const stopFile = `${dir}/supervisor.stop`;
  // The inner shell is the process that becomes svcgate: its $$ is svcgate's pid.
  await Deno.writeTextFile(
    `${dir}/supervise.sh`,
    [
      "#!/bin/sh",
      `while [ ! -e ${stopFile} ]; do`,
      `  sh -c 'echo $$ > ${pidFile}; LISTEN_PID=$$ exec "$@"' svcgate "$@"`,
      "done",
      "",
    ].join("\n"),
  );
  const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const child = lab.spawn(lab.node.ns, [
    ...["systemd-socket-activate", "--datagram", "-l", `${address}:${port}`, "--fdname=dns"],
    ...["systemd-socket-activate", "-l", `${address}:${port}`, "--fdname=dns-tcp"],
    ...["env", ...env, "sh", `${dir}/supervise.sh`, ...options.argv],
  ], { stdout: "null", stderr: "piped" });
  const log = collectLines(child.stderr);
  const pid = async () => Number((await Deno.readTextFile(pidFile).catch(() => "0")).trim());
  await waitFor(
    "systemd-socket-activate to listen",
    () => log.some((l) => l.includes("as 3.")),
    10_000,
    log,
  );
  // The first datagram starts the command (and is answered by the first svcgate).
  await lab.exec(lab.node.ns, [
    ...["timeout", "1", "dig", `@${address}`, "-p", String(port), "start.invalid", "+tries=1"],
  ]);
  await waitFor(
    "svcgate to start under socket activation",
    async () => (await pid()) > 0,
    10_000,
    log,
  );
  return {
    log,
    pid,
    async restart() {
      const before = await pid();
      await lab.exec(lab.node.ns, ["kill", "-TERM", String(before)]);
      await waitFor(
        `svcgate ${before} to be replaced`,
        async () => {
          const now = await pid();
          return now > 0 && now !== before;
        },
        30_000,
        log,
      );
    },
    async stop() {
      await Deno.writeTextFile(stopFile, "");
      const current = await pid();
      if (current > 0) await lab.exec(lab.node.ns, ["kill", "-TERM", String(current)]);
      await child.status;
    },
  };
}
