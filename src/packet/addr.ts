// IPv4 addresses are unsigned 32-bit numbers (host order value of the network-order bytes); MACs are 6 bytes.
// Parsing and formatting are for humans and setup code only, never the per-packet path.

export class AddrError extends Error {
  constructor(
    message: string,
    readonly where?: string,
  ) {
    super(message);
    this.name = "AddrError";
  }
}

/** "10.0.0.1" -> 0x0a000001. Throws AddrError on anything that is not a dotted quad. */
export function parseIpv4(text: string): number {
  const parts = text.split(".");
  if (parts.length !== 4) throw new AddrError(`invalid IPv4 address "${text}"`);
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) throw new AddrError(`invalid IPv4 address "${text}"`);
    const n = Number(p);
    if (n > 255) throw new AddrError(`invalid IPv4 address "${text}"`);
    v = v * 256 + n;
  }
  return v >>> 0;
}

export function formatIpv4(ip: number): string {
  return `${(ip >>> 24) & 255}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** Network mask for a prefix length: 24 -> 0xffffff00, 0 -> 0. */
export function prefixMask(len: number): number {
  if (!Number.isInteger(len) || len < 0 || len > 32) throw new AddrError(`invalid prefix length ${len}`);
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

export interface Ipv4Cidr {
  /** Network address (already masked). */
  addr: number;
  /** Prefix length, 0..32. */
  len: number;
  mask: number;
}

/** "10.244.0.0/16" or a bare address (a /32). The address is masked, as the kernel does for routes and rules. */
export function parseCidr(text: string): Ipv4Cidr {
  const slash = text.indexOf("/");
  const ip = parseIpv4(slash < 0 ? text : text.slice(0, slash));
  let len = 32;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (/^\d{1,2}$/.test(lenText)) len = Number(lenText);
    else if (lenText.includes(".")) len = maskToPrefix(parseIpv4(lenText), text);
    else throw new AddrError(`invalid CIDR "${text}"`);
  }
  const mask = prefixMask(len);
  return { addr: (ip & mask) >>> 0, len, mask };
}

function maskToPrefix(mask: number, text: string): number {
  let len = 0;
  while (len < 32 && (mask >>> (31 - len)) & 1) len++;
  if (prefixMask(len) !== mask >>> 0) throw new AddrError(`non-contiguous mask in "${text}"`);
  return len;
}

export function formatCidr(c: { addr: number; len: number }): string {
  return `${formatIpv4(c.addr)}/${c.len}`;
}

export function cidrContains(c: Ipv4Cidr, ip: number): boolean {
  return ((ip & c.mask) >>> 0) === c.addr;
}

/** "02:42:ac:11:00:02" -> 6 bytes. */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new AddrError(`invalid MAC address "${text}"`);
  }
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(buf: Uint8Array, off = 0): string {
  let s = "";
  for (let i = 0; i < 6; i++) {
    if (i) s += ":";
    s += buf[off + i]!.toString(16).padStart(2, "0");
  }
  return s;
}

/** A MAC address as one number (48 bits fit exactly in a double): for FDB keys and packet fields. */
export function parseMac48(text: string): number {
  const b = parseMac(text);
  return (b[0]! * 0x10000 + ((b[1]! << 8) | b[2]!)) * 0x1000000 + ((b[3]! << 16) | (b[4]! << 8) | b[5]!);
}

export function formatMac48(mac: number): string {
  const hi = Math.floor(mac / 0x1000000);
  const lo = mac % 0x1000000;
  const b = [(hi >>> 16) & 255, (hi >>> 8) & 255, hi & 255, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255];
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** Read the 6 bytes at `off` as a 48-bit number. */
export function getMac48(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!) * 0x1000000 + ((buf[off + 3]! << 16) | (buf[off + 4]! << 8) | buf[off + 5]!);
}

export function setMac48(buf: Uint8Array, off: number, mac: number): void {
  const hi = Math.floor(mac / 0x1000000);
  const lo = mac - hi * 0x1000000;
  buf[off] = (hi >>> 16) & 255;
  buf[off + 1] = (hi >>> 8) & 255;
  buf[off + 2] = hi & 255;
  buf[off + 3] = (lo >>> 16) & 255;
  buf[off + 4] = (lo >>> 8) & 255;
  buf[off + 5] = lo & 255;
}

export const MAC_BROADCAST = 0xffffffffffff;
