/**
 * The server every lab pod runs: TCP and HTTP on one port, UDP on another, each replying with the
 * pod's name, on IPv4 and IPv6; `GET /source` answers the client address the pod sees instead
 * (masquerading shows there). Prints "ready" on stdout once both listen.
 *
 * Usage: deno run --allow-net pod_server.ts NAME [TCP_PORT=8080] [UDP_PORT=9090]
 * @module
 */

import dgram from "node:dgram";

const [name, tcpPortText = "8080", udpPortText = "9090"] = Deno.args;
if (!name) {
  console.error("usage: pod_server.ts NAME [TCP_PORT] [UDP_PORT]");
  Deno.exit(2);
}
const encoder = new TextEncoder();
const HTTP_METHOD = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) /;
// A plain TCP client that sends nothing still gets the name after this pause.
const SILENT_CLIENT_MS = 100;

async function serveTcp(conn: Deno.Conn): Promise<void> {
  try {
    const buf = new Uint8Array(4096);
    const timer = new Promise<null>((r) => setTimeout(() => r(null), SILENT_CLIENT_MS));
    const n = await Promise.race([conn.read(buf), timer]);
    const head = n ? new TextDecoder().decode(buf.subarray(0, n)) : "";
    if (HTTP_METHOD.test(head)) {
      const source = (conn.remoteAddr as Deno.NetAddr).hostname.replace(/^::ffff:/, "");
      const body = head.startsWith("GET /source ") ? `${source}\n` : `${name}\n`;
      const bodyText = head.startsWith("HEAD ") ? "" : body;
      await conn.write(encoder.encode(
        `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n` +
          `connection: close\r\nx-pod: ${name}\r\n\r\n${bodyText}`,
      ));
    } else {
      await conn.write(encoder.encode(`${name}\n`));
    }
  } catch {
    // A client that resets mid-reply is normal under load tests.
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

const listener = Deno.listen({ hostname: "::", port: Number(tcpPortText) });
const udp = dgram.createSocket({ type: "udp6", ipv6Only: false });
udp.on("message", (_msg, rinfo) => {
  udp.send(`${name}\n`, rinfo.port, rinfo.address);
});
await new Promise<void>((resolve) => udp.bind(Number(udpPortText), "::", resolve));
console.log("ready");
for await (const conn of listener) serveTcp(conn);
