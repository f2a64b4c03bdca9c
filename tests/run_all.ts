/**
 * `deno task test`: installs the Debian tools the tests need (when missing and running as root),
 * then runs `deno fmt --check`, `deno lint`, `deno check` and every test, unit and end-to-end,
 * and closes with one plain line `tests: N passed, N failed`.
 * @module
 */

const TOOLS: Record<string, string> = {
  nft: "nftables",
  ip: "iproute2",
  conntrack: "conntrack",
  dig: "bind9-dnsutils",
  kdig: "knot-dnsutils",
  dnsperf: "dnsperf",
  unbound: "unbound",
  knotd: "knot",
  dnsmasq: "dnsmasq-base",
  openssl: "openssl",
  curl: "curl",
  python3: "python3",
  // Real client resolvers for the DNS search-path tests: glibc (gcc), musl, Go's pure resolver.
  gcc: "gcc",
  "musl-gcc": "musl-tools",
  go: "golang-go",
  // Socket activation in the restart tests (tests/support/socket_activation.ts).
  "systemd-socket-activate": "systemd",
};

async function sh(
  cmd: string[],
  opts: { capture?: boolean } = {},
): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: opts.capture ? "piped" : "inherit",
    stderr: opts.capture ? "piped" : "inherit",
  }).spawn();
  const r = await child.output();
  return { code: r.code, out: opts.capture ? new TextDecoder().decode(r.stdout) : "" };
}

async function missingPackages(): Promise<string[]> {
  const missing: string[] = [];
  for (const [tool, pkg] of Object.entries(TOOLS)) {
    const r = await sh(["sh", "-c", `command -v ${tool} || test -x /usr/sbin/${tool}`], {
      capture: true,
    });
    if (r.code !== 0) missing.push(pkg);
  }
  return missing;
}

function step(name: string): void {
  console.log(`\n=== ${name}`);
}

const missing = await missingPackages();
if (missing.length > 0) {
  if (Deno.uid() === 0) {
    step(`installing ${missing.join(" ")}`);
    const env = "DEBIAN_FRONTEND=noninteractive";
    const r = await sh([
      "sh",
      "-c",
      `apt-get update -qq && ${env} apt-get install -y -qq ${missing.join(" ")}`,
    ]);
    if (r.code !== 0) {
      console.error(`Cannot install test tools (${missing.join(", ")}): apt-get exited ${r.code}`);
      Deno.exit(1);
    }
  } else {
    console.log(
      `Not root: cannot install ${
        missing.join(", ")
      }; end-to-end tests needing them will skip (or fail under CI).`,
    );
  }
}

const deno = Deno.execPath();
for (
  const [name, args] of [
    ["format", ["fmt", "--check"]],
    ["lint", ["lint"]],
    ["type check", ["check", "main.ts", "mod.ts", "src", "tests"]],
  ] as const
) {
  step(name);
  const r = await sh([deno, ...args]);
  if (r.code !== 0) {
    console.error(`${name} failed`);
    console.log("tests: 0 passed, 1 failed");
    Deno.exit(1);
  }
}

step("tests");
const filter = Deno.args;
const child = new Deno.Command(deno, {
  args: ["test", "-A", "--no-check", ...filter],
  // Plain text, so the closing summary can be read back.
  env: { NO_COLOR: "1" },
  stdout: "piped",
  stderr: "inherit",
}).spawn();
let tail = "";
const decoder = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk)).slice(-4000);
}
const status = await child.status;
// deno prints "ok | 12 passed (3 steps) | 0 failed | 1 ignored"; restate it plainly.
const m = tail.match(/(\d+) passed[^|]*\| (\d+) failed(?: \| (\d+) ignored)?/);
const passed = m ? Number(m[1]) : 0;
const failed = m ? Number(m[2]) : (status.code === 0 ? 0 : 1);
const ignored = m?.[3] ? `, ${m[3]} skipped` : "";
console.log(`\ntests: ${passed} passed, ${failed} failed${ignored}`);
Deno.exit(status.code === 0 && failed === 0 && passed > 0 ? 0 : 1);
