import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { chooseDnsSockets, parseListenFds, type SocketFacts } from "./inherited_sockets.ts";

Deno.test("inherited sockets: sd_listen_fds variables", () => {
  const cases: {
    what: string;
    env: Record<string, string>;
    want: ReturnType<typeof parseListenFds>;
  }[] = [
    { what: "nothing passed", env: {}, want: null },
    { what: "for another process", env: { LISTEN_PID: "41", LISTEN_FDS: "2" }, want: null },
    { what: "no LISTEN_PID", env: { LISTEN_FDS: "2" }, want: null },
    {
      what: "two, unnamed",
      env: { LISTEN_PID: "42", LISTEN_FDS: "2" },
      want: { fds: [{ fd: 3, name: null }, { fd: 4, name: null }] },
    },
    {
      what: "two, named",
      env: { LISTEN_PID: "42", LISTEN_FDS: "2", LISTEN_FDNAMES: "dns:dns-tcp" },
      want: { fds: [{ fd: 3, name: "dns" }, { fd: 4, name: "dns-tcp" }] },
    },
    { what: "zero", env: { LISTEN_PID: "42", LISTEN_FDS: "0" }, want: { fds: [] } },
    {
      what: "not a count",
      env: { LISTEN_PID: "42", LISTEN_FDS: "two" },
      want: 'LISTEN_FDS="two" is not a count of descriptors (0-64)',
    },
    {
      what: "not a pid",
      env: { LISTEN_PID: "me", LISTEN_FDS: "1" },
      want: 'LISTEN_PID="me" is not a process id',
    },
    {
      what: "names do not match",
      env: { LISTEN_PID: "42", LISTEN_FDS: "2", LISTEN_FDNAMES: "dns" },
      want: 'LISTEN_FDNAMES="dns" names 1 descriptors, LISTEN_FDS="2"',
    },
  ];
  for (const c of cases) assertEquals(parseListenFds(c.env, 42), c.want, c.what);
});

const BIND = { hostname: "169.254.20.10", port: 53 };
const udp = (fd: number, address = "169.254.20.10", port = 53): SocketFacts => ({
  fd,
  name: null,
  type: "udp",
  listening: false,
  address,
  port,
});
const tcp = (fd: number, listening = true): SocketFacts => ({
  fd,
  name: "dns-tcp",
  type: "tcp",
  listening,
  address: "169.254.20.10",
  port: 53,
});

Deno.test("inherited sockets: the DNS sockets among those passed", () => {
  const good: {
    what: string;
    sockets: SocketFacts[];
    want: { udpFd: number; tcpFd: number | null };
  }[] = [
    { what: "UDP and TCP", sockets: [udp(3), tcp(4)], want: { udpFd: 3, tcpFd: 4 } },
    { what: "TCP first", sockets: [tcp(3), udp(4)], want: { udpFd: 4, tcpFd: 3 } },
    { what: "UDP only", sockets: [udp(3)], want: { udpFd: 3, tcpFd: null } },
  ];
  for (const c of good) assertEquals(chooseDnsSockets(c.sockets, BIND), c.want, c.what);
  const bad: { what: string; sockets: SocketFacts[]; says: RegExp }[] = [
    { what: "no UDP", sockets: [tcp(3)], says: /no UDP socket was passed/ },
    {
      what: "another address",
      sockets: [udp(3, "198.18.0.1")],
      says: /descriptor 3 .*bound to 198\.18\.0\.1:53, --dns-bind-address is 169\.254\.20\.10:53/,
    },
    {
      what: "another port",
      sockets: [udp(3, "169.254.20.10", 5353)],
      says: /bound to 169\.254\.20\.10:5353/,
    },
    {
      what: "TCP not listening",
      sockets: [udp(3), tcp(4, false)],
      says: /descriptor 4 \("dns-tcp"\)/,
    },
    { what: "two UDP", sockets: [udp(3), udp(4)], says: /a second UDP socket/ },
    {
      what: "not a socket of ours",
      sockets: [{ ...udp(3), type: "other" }],
      says: /one UDP socket and one listening TCP socket/,
    },
  ];
  for (const c of bad) assertThrows(() => chooseDnsSockets(c.sockets, BIND), c.says, c.what);
});
