// The port space of a namespace (inet_hashinfo / udp_table): bind conflicts as the kernel reports them
// (EADDRINUSE; 0.0.0.0 conflicts with every address on the same port; SO_REUSEADDR/REUSEPORT not modelled) and
// the lookup local delivery does: exact local address first, then the wildcard.
import { EADDRINUSE } from "./constants.js";
import { NetError } from "./error.js";
import { formatIpv4 } from "../packet/addr.js";
import type { Pkt } from "./pkt.js";
import type { NetNamespace } from "./netns.js";

export interface Socket {
  proto: number;
  /** Bound address, 0 = INADDR_ANY. */
  addr: number;
  port: number;
  /** Packets delivered. */
  rx: number;
  /** Source of the last packet delivered (as the application sees it: getpeername / recvfrom). */
  lastSrc: number;
  lastSport: number;
  /**
   * Called on delivery with the packet (IPv4 at pkt.off + 14) while it is still valid; the model frees it after.
   * Kernel sockets (the VXLAN receive socket) use this to take the packet over: return true to keep it.
   */
  onReceive: ((pkt: Pkt, sock: Socket, ns: NetNamespace) => boolean | void) | null;
  /** Owner label for errors and printing (`pause`, `kube-proxy`, `vxlan flannel.1`). */
  owner: string;
}

export class SocketTable {
  /** key = proto << 16 | port -> sockets on that port. */
  private readonly byPort = new Map<number, Socket[]>();

  bind(ns: NetNamespace, proto: number, addr: number, port: number, owner = ""): Socket {
    const key = (proto << 16) | port;
    const list = this.byPort.get(key);
    if (list !== undefined) {
      for (const s of list) {
        if (s.addr === addr || s.addr === 0 || addr === 0) {
          throw new NetError(
            `bind ${formatIpv4(addr)}:${port}/${proto === 6 ? "tcp" : proto === 17 ? "udp" : proto}: Address already in use (held by ${s.owner || "a socket"} on ${formatIpv4(s.addr)}:${port})`,
            `${ns.name}: bind`,
            EADDRINUSE,
          );
        }
      }
    }
    const sock: Socket = { proto, addr, port, rx: 0, lastSrc: 0, lastSport: 0, onReceive: null, owner };
    if (list === undefined) this.byPort.set(key, [sock]);
    else list.push(sock);
    return sock;
  }

  close(sock: Socket): void {
    const key = (sock.proto << 16) | sock.port;
    const list = this.byPort.get(key);
    if (list === undefined) return;
    const i = list.indexOf(sock);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byPort.delete(key);
  }

  /** __udp4_lib_lookup / __inet_lookup_listener: exact address beats the wildcard. */
  lookup(proto: number, daddr: number, dport: number): Socket | null {
    const list = this.byPort.get((proto << 16) | dport);
    if (list === undefined) return null;
    let wild: Socket | null = null;
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      if (s.addr === daddr) return s;
      if (s.addr === 0) wild = s;
    }
    return wild;
  }

  all(): Socket[] {
    return [...this.byPort.values()].flat();
  }
}
