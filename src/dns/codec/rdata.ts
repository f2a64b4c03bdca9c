/**
 * Record data on the wire, both ways, one case per record type side by side: a new record type is
 * its data shape in records.ts, its two wire forms here, and (if services produce it)
 * zone/service_records.ts. Pure.
 * @module
 */

import { formatIp, parseIp } from "../../model/ip.ts";
import {
  type AddressData,
  type MxData,
  type NameData,
  type RData,
  type ResourceRecord,
  RRType,
  type SoaData,
  type SrvData,
  type TxtData,
  typeName,
} from "./records.ts";

/** What {@link readRData} needs of the decoder's reader (decode.ts). */
export interface RDataReader {
  readonly buf: Uint8Array;
  pos: number;
  /** false: data is checked as usual but not built (a query's sections that are thrown away). */
  readonly keep: boolean;
  need(n: number, what: string): void;
  u8(what: string): number;
  u16(what: string): number;
  u32(what: string): number;
  bytes(n: number, what: string): Uint8Array;
  name(what: string): string;
}

/** What {@link writeRData} needs of the encoder's writer (encode.ts). */
export interface RDataWriter {
  readonly buf: Uint8Array;
  readonly len: number;
  u8(v: number): void;
  u16(v: number): void;
  u32(v: number): void;
  bytes(b: Uint8Array): void;
  name(name: string, compress: boolean): void;
}

const EMPTY = new Uint8Array(0);

/** Record data that does not match its type; the decoder reports it as a malformed message. */
export class RDataError extends Error {}

const latin1 = (bytes: Uint8Array, start: number, end: number): string => {
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]);
  return s;
};

/** Reads one record's data (`rdlen` bytes at the reader's position). */
export function readRData(r: RDataReader, type: number, rdlen: number, what: string): RData {
  const end = r.pos + rdlen;
  r.need(rdlen, `${what} data`);
  let data: RData;
  switch (type) {
    case RRType.A:
      if (rdlen !== 4) {
        throw new RDataError(`${what} at offset ${r.pos}: A data is ${rdlen} bytes, not 4`);
      }
      data = { address: r.keep ? formatIp({ family: 4, bytes: r.buf.subarray(r.pos, end) }) : "" };
      r.pos = end;
      break;
    case RRType.AAAA:
      if (rdlen !== 16) {
        throw new RDataError(`${what} at offset ${r.pos}: AAAA data is ${rdlen} bytes, not 16`);
      }
      data = { address: r.keep ? formatIp({ family: 6, bytes: r.buf.subarray(r.pos, end) }) : "" };
      r.pos = end;
      break;
    case RRType.CNAME:
    case RRType.NS:
    case RRType.PTR:
      data = { target: r.name(`${what} target`) };
      break;
    case RRType.MX:
      data = { preference: r.u16(`${what} preference`), exchange: r.name(`${what} exchange`) };
      break;
    case RRType.SRV:
      data = {
        priority: r.u16(`${what} priority`),
        weight: r.u16(`${what} weight`),
        port: r.u16(`${what} port`),
        target: r.name(`${what} target`),
      };
      break;
    case RRType.SOA:
      data = {
        mname: r.name(`${what} mname`),
        rname: r.name(`${what} rname`),
        serial: r.u32(`${what} serial`),
        refresh: r.u32(`${what} refresh`),
        retry: r.u32(`${what} retry`),
        expire: r.u32(`${what} expire`),
        minimum: r.u32(`${what} minimum`),
      };
      break;
    case RRType.TXT: {
      const texts: string[] = [];
      while (r.pos < end) {
        const len = r.u8(`${what} string length`);
        if (r.pos + len > end) {
          throw new RDataError(`${what} at offset ${r.pos}: TXT string overruns data`);
        }
        if (r.keep) texts.push(latin1(r.buf, r.pos, r.pos + len));
        r.pos += len;
      }
      data = { texts };
      break;
    }
    default:
      if (r.keep) data = { raw: r.bytes(rdlen, `${what} data`) };
      else {
        data = { raw: EMPTY };
        r.pos = end;
      }
  }
  if (r.pos !== end) {
    throw new RDataError(`${what}: data length ${rdlen} does not match its content`);
  }
  return data;
}

/** Writes one record's data, with its length prefix. */
export function writeRData(w: RDataWriter, rr: ResourceRecord): void {
  const lenAt = w.len;
  w.u16(0);
  const d = rr.data as unknown as Record<string, unknown>;
  const start = w.len;
  if ("raw" in d) {
    w.bytes(d.raw as Uint8Array);
  } else {
    switch (rr.type) {
      case RRType.A:
      case RRType.AAAA: {
        const ip = parseIp((d as unknown as AddressData).address);
        const family = rr.type === RRType.A ? 4 : 6;
        if (!ip || ip.family !== family) {
          throw new Error(
            `Cannot encode ${
              typeName(rr.type)
            } record "${rr.name}": "${d.address}" is not IPv${family}`,
          );
        }
        w.bytes(ip.bytes);
        break;
      }
      case RRType.CNAME:
      case RRType.NS:
      case RRType.PTR:
        w.name((d as unknown as NameData).target, true);
        break;
      case RRType.MX:
        w.u16((d as unknown as MxData).preference);
        w.name((d as unknown as MxData).exchange, true);
        break;
      case RRType.SRV: {
        const s = d as unknown as SrvData;
        w.u16(s.priority);
        w.u16(s.weight);
        w.u16(s.port);
        // RFC 2782: the SRV target must not be compressed.
        w.name(s.target, false);
        break;
      }
      case RRType.SOA: {
        const s = d as unknown as SoaData;
        w.name(s.mname, true);
        w.name(s.rname, true);
        w.u32(s.serial);
        w.u32(s.refresh);
        w.u32(s.retry);
        w.u32(s.expire);
        w.u32(s.minimum);
        break;
      }
      case RRType.TXT:
        for (const t of (d as unknown as TxtData).texts) {
          if (t.length > 255) {
            throw new Error(`Cannot encode TXT record "${rr.name}": a string exceeds 255 bytes`);
          }
          w.u8(t.length);
          for (let i = 0; i < t.length; i++) w.u8(t.charCodeAt(i) & 0xff);
        }
        break;
      default:
        throw new Error(
          `Cannot encode record "${rr.name}" of type ${typeName(rr.type)}: no raw data`,
        );
    }
  }
  const len = w.len - start;
  w.buf[lenAt] = len >> 8;
  w.buf[lenAt + 1] = len & 0xff;
}
