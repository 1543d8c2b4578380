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

export function neighKey(ifindex: number, ip: number): number {
  return ifindex * 0x100000000 + ip;
}

export class NeighTable {
  readonly entries = new Map<number, Neighbour>();

  get(dev: NetDevice, ip: number): Neighbour | undefined {
    return this.entries.get(neighKey(dev.ifindex, ip));
  }

  /** Current state, aging REACHABLE into STALE on the model clock. */
  state(n: Neighbour, now: number): number {
    if (n.state === NUD_REACHABLE && now - n.confirmed > REACHABLE_TIME_S) n.state = NUD_STALE;
    return n.state;
  }

  /** Create or update an entry (neigh_update). PERMANENT entries only change through `set` with PERMANENT. */
  set(dev: NetDevice, ip: number, mac: number, state: number, now: number): Neighbour {
    const key = neighKey(dev.ifindex, ip);
    let n = this.entries.get(key);
    if (n === undefined) {
      n = { ip, dev, mac, state, confirmed: now, queue: [], probes: 0 };
      this.entries.set(key, n);
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
    const key = neighKey(dev.ifindex, ip);
    let n = this.entries.get(key);
    if (n === undefined) {
      n = { ip, dev, mac: 0, state: NUD_INCOMPLETE, confirmed: now, queue: [], probes: 0 };
      this.entries.set(key, n);
    } else if (n.state === NUD_FAILED) {
      n.state = NUD_INCOMPLETE;
    }
    return n;
  }

  delete(dev: NetDevice, ip: number): boolean {
    return this.entries.delete(neighKey(dev.ifindex, ip));
  }

  /** Remove every entry on a device (device down or moved: neigh_ifdown). */
  flushDev(dev: NetDevice): Pkt[] {
    const dropped: Pkt[] = [];
    for (const [k, n] of this.entries) {
      if (n.dev === dev) {
        dropped.push(...n.queue);
        this.entries.delete(k);
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
