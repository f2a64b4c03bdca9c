/**
 * Name rules, the same as Kubernetes' apimachinery validation: DNS-1123 labels and subdomains,
 * DNS-1035 labels, IANA service names, label and annotation keys and label values. Each rule has a
 * test and the sentence quoted in error messages. Pure.
 * @module
 */

import { show } from "./validate.ts";

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

// The rules as error messages quote them.
export const DNS1123_LABEL_RULE =
  'a DNS-1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters';
export const DNS1035_LABEL_RULE =
  'a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters';
export const DNS1123_SUBDOMAIN_RULE =
  "a DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters";
export const IANA_SVC_NAME_RULE =
  'an IANA service name: 1-15 characters a-z, 0-9 and "-", at least one letter, no leading, trailing or double "-"';

/** Namespaces, port names, hostnames. */
export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

/** Service names. */
export function isDns1035Label(s: string): boolean {
  return s.length <= 63 && DNS1035_LABEL.test(s);
}

// Node names and zones repeat across every endpoint of a cluster: remember the valid ones.
const validSubdomains = new Set<string>();

/** Node names, object names of most kinds, label key prefixes, DNS names. */
export function isDns1123Subdomain(s: string): boolean {
  if (validSubdomains.has(s)) return true;
  if (s.length > 253 || !DNS1123_SUBDOMAIN.test(s)) return false;
  if (validSubdomains.size >= 4096) validSubdomains.clear();
  validSubdomains.add(s);
  return true;
}

/** Named target ports (`http`, `grpc-web`). */
export function isIanaSvcName(s: string): boolean {
  return s.length <= 15 && IANA_SVC_NAME.test(s) && /[a-z]/.test(s) && !s.includes("--");
}

/** Why a label or annotation key is invalid, or null when it is valid. */
export function qualifiedNameProblem(key: string): string | null {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : null;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== null && (prefix === "" || !isDns1123Subdomain(prefix))) {
    return `key prefix ${show(prefix)} is not ${DNS1123_SUBDOMAIN_RULE}`;
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME_PART.test(name)) {
    return `key name ${
      show(name)
    } must be 1-63 characters of A-Z, a-z, 0-9, "-", "_" and ".", starting and ending with a letter or digit`;
  }
  return null;
}

/** Why a label value is invalid, or null when it is valid. */
export function labelValueProblem(value: string): string | null {
  if (value.length <= 63 && LABEL_VALUE.test(value)) return null;
  return `${
    show(value)
  } is not a label value: at most 63 characters of A-Z, a-z, 0-9, "-", "_" and ".", starting and ending with a letter or digit`;
}
