// One error class for the packet layer. Views validate once when bound and throw this; nothing else in
// src/packet/ throws on packet bytes (the hot-path helpers assume a packet a view has already accepted).

export type PacketErrorKind = "truncated" | "malformed";

/** Layer names as they appear in `where` (inner VXLAN layers are prefixed with "inner "). */
export type PacketLayer = "eth" | "vlan" | "arp" | "ipv4" | "tcp" | "udp" | "icmp" | "vxlan" | string;

export class PacketError extends Error {
  /** `ipv4 at byte 14`: the layer and the absolute byte offset (in the bound buffer) of the bad header. */
  readonly where: string;
  constructor(
    readonly kind: PacketErrorKind,
    readonly layer: PacketLayer,
    readonly offset: number,
    readonly detail: string,
  ) {
    super(`${kind} ${layer} header: ${detail}`);
    this.name = "PacketError";
    this.where = `${layer} at byte ${offset}`;
  }
}

export function truncated(layer: PacketLayer, offset: number, need: number, have: number): PacketError {
  return new PacketError("truncated", layer, offset, `need ${need} bytes, have ${have}`);
}

export function malformed(layer: PacketLayer, offset: number, detail: string): PacketError {
  return new PacketError("malformed", layer, offset, detail);
}
