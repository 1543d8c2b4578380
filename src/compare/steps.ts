// One exchange step of a compare conversation (a packet sent, the world run until it settles), and why a packet
// of it was lost: the first drop, in the trace records the step wrote, of a packet the step sent or of one derived
// from it (an echo reply, a reset). Records are read only when something went wrong.
import { DROP_NAMES, Drop, Ev, type World } from "../net/index.js";

export interface Loss {
  /** "netfilter drop in node-1", "no route from shop-db-0". */
  text: string;
  /** Dropped by a netfilter rule (NetworkPolicy in Gen 1-3) or a tc program (policy.ts in Gen 4). */
  policy: boolean;
}

export class StepTrace {
  private start = 0;
  private readonly ids: number[] = [];
  private noRoute = "";

  constructor(private readonly world: World) {}

  begin(): void {
    this.start = this.world.trace.count;
    this.ids.length = 0;
    this.noRoute = "";
  }

  /** A packet the step sent from `ns` (its id, or -errno when the send failed). */
  sent(id: number, nsName: string): void {
    if (id > 0) this.ids.push(id);
    else if (this.noRoute === "") this.noRoute = `no route from ${nsName}`;
  }

  loss(): Loss | null {
    if (this.noRoute !== "") return { text: this.noRoute, policy: false };
    const t = this.world.trace;
    const ids = this.ids;
    for (let i = this.start; i < t.count; i++) {
      const r = t.get(i);
      if (!ids.includes(r.pkt)) continue;
      if (r.ev === Ev.ICMP_SENT || r.ev === Ev.TCP_RST || r.ev === Ev.CLONE) ids.push(r.b);
      else if (r.ev === Ev.DROP && r.a !== Drop.OTHERHOST) {
        const where = r.ns >= 0 ? ` in ${this.world.namespaces[r.ns]!.name}` : "";
        return { text: `${DROP_NAMES[r.a] ?? r.a} drop${where}`, policy: r.a === Drop.NETFILTER || r.a === Drop.TC_SHOT };
      }
    }
    return null;
  }
}
