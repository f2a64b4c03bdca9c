/**
 * The search path walked on the server (CoreDNS's autopath): a pod's resolver, with kubelet's
 * `search <ns>.svc.<zone> svc.<zone> <zone> [host domains]` and `ndots:5`, asks
 * `www.example.com.<ns>.svc.<zone>` first, then each suffix, then the name itself: up to eight
 * queries (A and AAAA each) for one external name. When the client's namespace is known and its
 * question is `NAME.<ns>.svc.<zone>` (NXDOMAIN), svcgate tries the rest of that list itself and
 * answers the first name that exists with a CNAME from the asked name to it plus its records,
 * so the client stops at its first query. When nothing is found, or an upstream fails on the
 * way, the first answer (NXDOMAIN) stands and the client walks its list as before.
 *
 * Pure: the upstream is a function handed in.
 * @module
 */

import { isValidName, nameKey } from "../codec/names.ts";
import {
  type Message,
  type Question,
  Rcode,
  type ResourceRecord,
  RRClass,
  RRType,
} from "../codec/records.ts";
import type { Zone } from "../zone/zone.ts";
import { type AnswerContext, answerQuery, chasedReply, forwardedReply, replyTo } from "./answer.ts";

/** What an upstream said to a forwarded question (serve/upstream.ts ForwardResult). */
export type Upstreamed =
  | { readonly ok: true; readonly message: Message }
  | { readonly ok: false };

/** Asks the upstream resolvers. */
export type ResolveUpstream = (question: Question) => Promise<Upstreamed>;

/**
 * The search domains of a resolv.conf text (its last `search` or `domain` line, as glibc reads
 * it), without the cluster domain and the names under it: kubelet appends the node's search
 * domains to a pod's list after `<zone>`, so these are walked after the cluster's.
 *
 * @example
 * ```ts
 * hostSearchDomains("search corp.example cluster.local\n", "cluster.local"); // ["corp.example"]
 * ```
 */
export function hostSearchDomains(resolvConf: string, clusterDomain: string): string[] {
  let found: string[] = [];
  for (const raw of resolvConf.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const [word, ...rest] = line.split(/\s+/);
    if (word === "search" || word === "domain") found = rest;
  }
  const domain = nameKey(clusterDomain);
  const out: string[] = [];
  for (const d of found) {
    const key = nameKey(d);
    if (key === "" || key === domain || key.endsWith("." + domain)) continue;
    if (!isValidName(key) || out.includes(key)) continue;
    out.push(key);
  }
  return out;
}

/**
 * The names the client would try after `question` when its namespace is `namespace`: the
 * remaining cluster suffixes (in the question's case), `searchDomains`, then the bare name. Null
 * when the question is not `NAME.<namespace>.svc.<zone>`.
 *
 * @example
 * ```ts
 * searchCandidates(zone, "www.example.com.default.svc.cluster.local", "default", []);
 * // ["www.example.com.svc.cluster.local", "www.example.com.cluster.local", "www.example.com"]
 * ```
 */
export function searchCandidates(
  zone: Pick<Zone, "domain">,
  name: string,
  namespace: string,
  searchDomains: readonly string[],
): string[] | null {
  const text = name.endsWith(".") ? name.slice(0, -1) : name;
  const key = nameKey(text);
  const first = `.${namespace}.svc.${zone.domain}`;
  if (key.length <= first.length || !key.endsWith(first)) return null;
  const base = text.slice(0, text.length - first.length);
  // The suffixes as the client wrote them: `Svc.Cluster.Local`, `Cluster.Local`.
  const svcSuffix = text.slice(text.length - `svc.${zone.domain}`.length);
  const zoneSuffix = text.slice(text.length - zone.domain.length);
  const out: string[] = [];
  for (const suffix of [svcSuffix, zoneSuffix, ...searchDomains]) {
    const candidate = `${base}.${suffix}`;
    if (isValidName(candidate)) out.push(candidate);
  }
  out.push(base);
  return out;
}

/** The question `query` asks, renamed. */
function renamed(query: Message, name: string): Message {
  const q = query.questions[0];
  return { ...query, questions: [{ name, type: q.type, class: q.class }] };
}

/**
 * The reply to `query` from the reply `found` to one of its candidates: the found records
 * after a CNAME from the asked name to the first of them (CoreDNS's autopath `cnamer`), the
 * question as asked.
 */
export function searchedReply(query: Message, found: Message, ctx: AnswerContext): Message {
  const asked = query.questions[0].name;
  const answers: ResourceRecord[] = [];
  const lead = found.answers.find((rr) => nameKey(rr.name) !== nameKey(asked));
  if (lead) {
    answers.push({
      name: asked,
      type: RRType.CNAME,
      class: RRClass.IN,
      ttl: lead.ttl,
      data: { target: lead.name },
    });
  }
  answers.push(...found.answers);
  return replyTo(query, found.rcode, ctx, {
    aa: found.aa,
    answers,
    authority: found.authority,
    additional: found.additional,
  });
}

/**
 * Walks `candidates` for `query` (whose own answer was NXDOMAIN): the first answer that is not
 * NXDOMAIN, as {@link searchedReply}; null when every candidate is NXDOMAIN, or when a step
 * fails (an upstream error, REFUSED for a client that may not recurse): then the first answer
 * stands and the client searches on, as it would have.
 */
export async function searchOnServer(
  zone: Zone,
  query: Message,
  candidates: readonly string[],
  ctx: AnswerContext,
  resolve: ResolveUpstream | null,
): Promise<Message | null> {
  for (const name of candidates) {
    const ask = renamed(query, name);
    const r = answerQuery(zone, ask, ctx);
    let found: Message;
    if (r.kind === "reply") found = r.message;
    else if (r.kind === "forward") {
      if (!resolve) return null;
      const f = await resolve(r.question);
      if (!f.ok) return null;
      found = forwardedReply(ask, f.message);
    } else if (r.kind === "chase") {
      if (!resolve) found = r.message;
      else {
        const f = await resolve({ name: r.target, type: r.type, class: RRClass.IN });
        found = f.ok ? chasedReply(r.message, f.message) : r.message;
      }
    } else return null;
    if (found.rcode === Rcode.NXDOMAIN) continue;
    if (found.rcode !== Rcode.NOERROR) return null;
    return searchedReply(query, found, ctx);
  }
  return null;
}
