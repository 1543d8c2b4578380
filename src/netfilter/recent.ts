// xt_recent's per-name address lists: an address → its last hit times (up to ip_pkt_list_tot = 20 stamps).
// Entries allocate when an address is first seen (as the kernel kmallocs a recent_entry), not per packet.

export const IP_PKT_LIST_TOT = 20;

class RecentEntry {
  stamps = new Float64Array(IP_PKT_LIST_TOT);
  n = 0;
  next = 0;
  update(now: number): void {
    this.stamps[this.next] = now;
    this.next = (this.next + 1) % IP_PKT_LIST_TOT;
    if (this.n < IP_PKT_LIST_TOT) this.n++;
  }
}

export class RecentTables {
  private readonly lists = new Map<string, Map<number, RecentEntry>>();

  table(name: string): Map<number, RecentEntry> {
    let t = this.lists.get(name);
    if (!t) this.lists.set(name, (t = new Map()));
    return t;
  }

  /** One evaluation of a recent match (xt_recent recent_mt), `now` in seconds. Returns the match result. */
  check(t: Map<number, RecentEntry>, cmd: number, addr: number, now: number, seconds: number, hitcount: number, reap: boolean, invert: boolean): boolean {
    let ret = invert;
    let e = t.get(addr);
    if (cmd === RecentCmd.SET) {
      if (!e) t.set(addr, (e = new RecentEntry()));
      e.update(now);
      return !ret;
    }
    if (!e) return ret;
    ret = !ret;
    if (cmd === RecentCmd.REMOVE) {
      t.delete(addr);
      return ret;
    }
    if (seconds || hitcount) {
      const since = now - seconds;
      let hits = 0;
      let found = false;
      for (let i = 0; i < e.n; i++) {
        if (seconds && e.stamps[i]! < since) continue;
        if (!hitcount || ++hits >= hitcount) {
          found = true;
          break;
        }
      }
      if (reap && seconds) {
        // Drop stamps older than the window (recent_entry_reap keeps only what --seconds can still see).
        let k = 0;
        const kept = new Float64Array(IP_PKT_LIST_TOT);
        for (let i = 0; i < e.n; i++) if (e.stamps[i]! >= since) kept[k++] = e.stamps[i]!;
        e.stamps = kept;
        e.n = k;
        e.next = k % IP_PKT_LIST_TOT;
      }
      if (!found) return !ret;
    }
    if (cmd === RecentCmd.UPDATE) e.update(now);
    return ret;
  }
}

export const RecentCmd = { SET: 0, RCHECK: 1, UPDATE: 2, REMOVE: 3 } as const;
