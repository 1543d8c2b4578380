// The ARP neighbour table (net/core/neighbour.c + net/ipv4/arp.c) for one namespace, keyed by (device, IP) as a
// number. States follow NUD_*: INCOMPLETE while a request is out (packets wait on the entry's queue, as
// arp_queue does), REACHABLE on a reply, STALE after reachable_time without confirmation (still used; the
// DELAY/PROBE re-confirmation is not modelled), FAILED when nobody answered, PERMANENT for static entries.
import type { NetDevice } from "./device.js";
import { NUD_FAILED, NUD_INCOMPLETE, NUD_NOARP, NUD_PERMANENT, NUD_REACHABLE, NUD_STALE } from "./constants.js";
import type { Pkt } from "./pkt.js";

/** base_reachable_time is 30 s; the kernel picks 15..45 s at random, the model uses the base. */
export const REACHABLE_TIME_S = 30;
/** unres_qlen: packets queued per unresolved entry (the kernel counts bytes; 101 packets' worth by default). */
export const UNRES_QLEN = 101;

export interface Neighbour {
  ip: number;
  dev: NetDevice;
  mac: number;
  state: number;
  /** Model clock (seconds) of the last confirmation. */
  confirmed: number;
  /** Packets waiting for resolution (INCOMPLETE only). */
  queue: Pkt[];
  /** Whether the entry was created by a resolution attempt (vs learned from a request or added statically). */
  probes: number;
}

/** Keys are the IPv4 address as a signed 32-bit number (a V8 small integer: no allocation per lookup). */
export class NeighTable {
  /** All entries in insertion order (for `ip neigh`), keyed by an id; per-device maps serve lookups. */
  readonly entries = new Map<number, Neighbour>();
  private readonly byDev: Array<Map<number, Neighbour> | undefined> = [];
  private nextId = 1;

  get(dev: NetDevice, ip: number): Neighbour | undefined {
    const m = this.byDev[dev.ifindex];
    return m === undefined ? undefined : m.get(ip | 0);
  }

  private add(n: Neighbour): void {
    let m = this.byDev[n.dev.ifindex];
    if (m === undefined) {
      m = new Map();
      this.byDev[n.dev.ifindex] = m;
    }
    m.set(n.ip | 0, n);
    this.entries.set(this.nextId++, n);
  }

  private remove(n: Neighbour): void {
    this.byDev[n.dev.ifindex]?.delete(n.ip | 0);
    for (const [k, v] of this.entries) if (v === n) this.entries.delete(k);
  }

  /** Current state, aging REACHABLE into STALE on the model clock. */
  state(n: Neighbour, now: number): number {
    if (n.state === NUD_REACHABLE && now - n.confirmed > REACHABLE_TIME_S) n.state = NUD_STALE;
    return n.state;
  }

  /** Create or update an entry (neigh_update). PERMANENT entries only change through `set` with PERMANENT. */
  set(dev: NetDevice, ip: number, mac: number, state: number, now: number): Neighbour {
    let n = this.get(dev, ip);
    if (n === undefined) {
      n = { ip, dev, mac, state, confirmed: now, queue: [], probes: 0 };
      this.add(n);
      return n;
    }
    if (n.state === NUD_PERMANENT && state !== NUD_PERMANENT) return n;
    n.mac = mac;
    n.state = state;
    n.confirmed = now;
    return n;
  }

  /** An INCOMPLETE entry for a resolution about to start. */
  incomplete(dev: NetDevice, ip: number, now: number): Neighbour {
    let n = this.get(dev, ip);
    if (n === undefined) {
      n = { ip, dev, mac: 0, state: NUD_INCOMPLETE, confirmed: now, queue: [], probes: 0 };
      this.add(n);
    } else if (n.state === NUD_FAILED) {
      n.state = NUD_INCOMPLETE;
    }
    return n;
  }

  delete(dev: NetDevice, ip: number): boolean {
    const n = this.get(dev, ip);
    if (n === undefined) return false;
    this.remove(n);
    return true;
  }

  /** Remove every entry on a device (device down or moved: neigh_ifdown). */
  flushDev(dev: NetDevice): Pkt[] {
    const dropped: Pkt[] = [];
    for (const n of [...this.entries.values()]) {
      if (n.dev === dev) {
        dropped.push(...n.queue);
        this.remove(n);
      }
    }
    return dropped;
  }

  /** Entries in insertion order, for `ip neigh`. */
  list(): Neighbour[] {
    return [...this.entries.values()];
  }
}

export function nudUsable(state: number): boolean {
  return (state & (NUD_REACHABLE | NUD_STALE | NUD_PERMANENT | NUD_NOARP)) !== 0;
}
