// UDP and ICMP tracking, RELATED ICMP errors, nf_conntrack_max with early drop, confirmation clashes, expiry and
// the `conntrack -L` / `-S` formats.
import { describe, expect, it } from "vitest";
import { buildIcmpError } from "../../src/packet/build.js";
import {
  Conntrack,
  CT_DROP,
  CT_INVALID,
  ctIndex,
  ctInfo,
  IP_CT_ESTABLISHED,
  IP_CT_ESTABLISHED_REPLY,
  IP_CT_NEW,
  IP_CT_RELATED_REPLY,
  IPS_ASSURED,
  XT_CONNTRACK_STATE_ESTABLISHED,
  XT_CONNTRACK_STATE_INVALID,
  XT_CONNTRACK_STATE_NEW,
  XT_CONNTRACK_STATE_RELATED,
} from "../../src/netfilter/conntrack.js";
import { formatEntry, formatList, formatStats, tableJson } from "../../src/netfilter/conntrack-format.js";
import { F, L3, pass, ping, tcp, udp } from "./conntrack-fixtures.js";

describe("UDP: 30 s unreplied, 120 s stream once replied and older than 2 s", () => {
  const table: { name: string; seq: [("o" | "r"), number][]; info: number[]; timeout: number; assured: boolean }[] = [
    { name: "one packet", seq: [["o", 0]], info: [IP_CT_NEW], timeout: 30, assured: false },
    { name: "request and quick reply (DNS)", seq: [["o", 0], ["r", 0.01]], info: [IP_CT_NEW, IP_CT_ESTABLISHED_REPLY], timeout: 30, assured: false },
    { name: "request, reply, more within 2 s", seq: [["o", 0], ["r", 0.1], ["o", 1]], info: [IP_CT_NEW, IP_CT_ESTABLISHED_REPLY, IP_CT_ESTABLISHED], timeout: 30, assured: false },
    { name: "stream still active after 2 s", seq: [["o", 0], ["r", 0.1], ["o", 2.5]], info: [IP_CT_NEW, IP_CT_ESTABLISHED_REPLY, IP_CT_ESTABLISHED], timeout: 120, assured: true },
    { name: "unreplied packets stay NEW", seq: [["o", 0], ["o", 5]], info: [IP_CT_NEW, IP_CT_NEW], timeout: 30, assured: false },
  ];
  for (const c of table) {
    it(c.name, () => {
      const ct = new Conntrack();
      let ref = -1;
      c.seq.forEach(([d, t], n) => {
        ct.setTime(t);
        const f = d === "o" ? udp("10.0.0.1", 5000, "10.0.0.2", 53) : udp("10.0.0.2", 53, "10.0.0.1", 5000);
        ref = pass(ct, f);
        expect(ctInfo(ref), `packet ${n}`).toBe(c.info[n]);
      });
      const i = ctIndex(ref);
      expect(ct.remaining(i)).toBe(c.timeout);
      expect((ct.status[i]! & IPS_ASSURED) !== 0).toBe(c.assured);
    });
  }
});

describe("ICMP", () => {
  it("echo creates an entry (30 s), echo-reply matches its reply tuple", () => {
    const ct = new Conntrack();
    const r1 = pass(ct, ping("10.0.0.1", "10.0.0.2", 77));
    expect(ctInfo(r1)).toBe(IP_CT_NEW);
    const r2 = pass(ct, ping("10.0.0.2", "10.0.0.1", 77, true));
    expect(ctInfo(r2)).toBe(IP_CT_ESTABLISHED_REPLY);
    expect(ctIndex(r2)).toBe(ctIndex(r1));
    expect(ct.remaining(ctIndex(r1))).toBe(30);
    expect(formatList(ct)).toBe("icmp     1 30 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=77 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=77 mark=0 use=1\n");
  });

  it("an echo-reply with no entry is INVALID", () => {
    const ct = new Conntrack();
    expect(pass(ct, ping("10.0.0.2", "10.0.0.1", 77, true))).toBe(CT_INVALID);
    expect(ct.count).toBe(0);
  });

  it("an ICMP error quoting a tracked datagram is RELATED; one quoting nothing known is INVALID", () => {
    const ct = new Conntrack();
    const out = udp("10.0.0.1", 5000, "10.0.0.2", 9999);
    pass(ct, out);
    const err = buildIcmpError(3, 3, out); // port unreachable from 10.0.0.2 back to 10.0.0.1
    const ref = pass(ct, err);
    expect(ctInfo(ref)).toBe(IP_CT_RELATED_REPLY);
    expect(ct.ctStateBits(ref)).toBe(XT_CONNTRACK_STATE_RELATED);
    const stray = buildIcmpError(3, 3, udp("10.0.0.1", 5001, "10.0.0.2", 9999));
    expect(pass(ct, stray)).toBe(CT_INVALID);
    expect(ct.stats.error).toBe(1);
    // An error not addressed to the quoted datagram's sender is not related either.
    const forged = buildIcmpError(3, 3, out, { dst: "10.9.9.9" });
    expect(pass(ct, forged)).toBe(CT_INVALID);
  });
});

describe("ctstate bits", () => {
  it("NEW, ESTABLISHED, INVALID as xt_conntrack sees them", () => {
    const ct = new Conntrack();
    const a = pass(ct, tcp("10.0.0.1", 1, "10.0.0.2", 2, F.SYN, 1));
    expect(ct.ctStateBits(a)).toBe(XT_CONNTRACK_STATE_NEW);
    const b = pass(ct, tcp("10.0.0.2", 2, "10.0.0.1", 1, F.SYN | F.ACK, 5, 2));
    expect(ct.ctStateBits(b)).toBe(XT_CONNTRACK_STATE_ESTABLISHED);
    expect(ct.ctStateBits(CT_INVALID)).toBe(XT_CONNTRACK_STATE_INVALID);
  });
});

describe("nf_conntrack_max and early_drop", () => {
  it("a full table evicts an unassured entry from the new tuple's buckets, never an ASSURED one", () => {
    // One bucket: every tuple hashes to the same chain, so early_drop always looks at all entries.
    const ct = new Conntrack({ max: 3, buckets: 1 });
    // An assured UDP stream...
    pass(ct, udp("10.0.0.1", 1000, "10.0.0.9", 53));
    pass(ct, udp("10.0.0.9", 53, "10.0.0.1", 1000));
    ct.setTime(3);
    const s = pass(ct, udp("10.0.0.1", 1000, "10.0.0.9", 53));
    expect(ct.status[ctIndex(s)]! & IPS_ASSURED).toBeTruthy();
    // ...and two unreplied flows fill the table.
    pass(ct, udp("10.0.0.1", 1001, "10.0.0.9", 53));
    pass(ct, udp("10.0.0.1", 1002, "10.0.0.9", 53));
    expect(ct.count).toBe(3);
    // The next new flow evicts every unassured entry of the first chain holding one (both unreplied flows).
    const r = pass(ct, udp("10.0.0.1", 1003, "10.0.0.9", 53));
    expect(r).toBeGreaterThanOrEqual(0);
    expect(ct.stats.early_drop).toBe(2);
    expect(ct.count).toBe(2);
  });

  it("when nothing can be evicted the packet is dropped and counted", () => {
    const ct = new Conntrack({ max: 1, buckets: 1 });
    pass(ct, udp("10.0.0.1", 1000, "10.0.0.9", 53));
    pass(ct, udp("10.0.0.9", 53, "10.0.0.1", 1000));
    ct.setTime(3);
    pass(ct, udp("10.0.0.1", 1000, "10.0.0.9", 53)); // assured now
    const f = udp("10.0.0.1", 2000, "10.0.0.9", 53);
    expect(ct.in(f, L3, f.length - L3)).toBe(CT_DROP);
    expect(ct.stats.drop).toBe(1);
    expect(ct.stats.early_drop).toBe(0);
    // Existing flows keep working.
    expect(ctInfo(pass(ct, udp("10.0.0.9", 53, "10.0.0.1", 1000)))).toBe(IP_CT_ESTABLISHED_REPLY);
  });

  it("unconfirmed entries count against the limit until destroyed", () => {
    const ct = new Conntrack({ max: 1, buckets: 1 });
    const f = udp("10.0.0.1", 1000, "10.0.0.9", 53);
    const ref = ct.in(f, L3, f.length - L3);
    const g = udp("10.0.0.1", 1001, "10.0.0.9", 53);
    expect(ct.in(g, L3, g.length - L3)).toBe(CT_DROP); // nothing confirmed to evict
    ct.destroy(ref);
    expect(ct.count).toBe(0);
    expect(pass(ct, g)).toBeGreaterThanOrEqual(0);
  });
});

describe("confirmation clash (two unconfirmed entries with one tuple)", () => {
  it("UDP without NAT: the loser's packet is attached to the winner (clash_resolve)", () => {
    const ct = new Conntrack();
    const a = udp("10.0.0.1", 1000, "10.0.0.9", 53);
    const b = udp("10.0.0.1", 1000, "10.0.0.9", 53);
    const ra = ct.in(a, L3, a.length - L3);
    const rb = ct.in(b, L3, b.length - L3);
    expect(ctIndex(ra)).not.toBe(ctIndex(rb));
    expect(ct.confirm(ra)).toBe(ra);
    const rb2 = ct.confirm(rb);
    expect(ctIndex(rb2)).toBe(ctIndex(ra));
    expect(ct.stats.clash_resolve).toBe(1);
    expect(ct.count).toBe(1);
  });

  it("ICMP (allow_clash since Linux 6.x): the second echo joins the first entry", () => {
    const ct = new Conntrack();
    const a = ping("10.0.0.1", "10.0.0.9", 7);
    const ra = ct.in(a, L3, a.length - L3);
    const rb = ct.in(a, L3, a.length - L3);
    ct.confirm(ra);
    expect(ctIndex(ct.confirm(rb))).toBe(ctIndex(ra));
    expect(ct.stats.insert_failed).toBe(0);
  });

  it("TCP: the loser is dropped (insert_failed, drop)", () => {
    const ct = new Conntrack();
    const a = tcp("10.0.0.1", 1000, "10.0.0.9", 80, F.SYN, 1);
    const ra = ct.in(a, L3, a.length - L3);
    const rb = ct.in(a, L3, a.length - L3);
    ct.confirm(ra);
    expect(ct.confirm(rb)).toBe(CT_DROP);
    expect(ct.stats.insert_failed).toBe(1);
    expect(ct.stats.drop).toBe(1);
  });
});

describe("expiry and gc", () => {
  it("the gc step removes expired entries; a lookup never returns one", () => {
    const ct = new Conntrack();
    pass(ct, udp("10.0.0.1", 1000, "10.0.0.9", 53));
    pass(ct, ping("10.0.0.1", "10.0.0.9", 5));
    pass(ct, tcp("10.0.0.1", 1000, "10.0.0.9", 80, F.SYN, 1));
    ct.setTime(29.5);
    expect(ct.count).toBe(3);
    ct.setTime(30);
    expect(ct.gc()).toBe(2);
    expect(ct.count).toBe(1); // UDP and ICMP gone, SYN_SENT has 120 s
    ct.now = 120; // no gc: lazily expired on lookup
    const r = pass(ct, tcp("10.0.0.9", 80, "10.0.0.1", 1000, F.SYN | F.ACK, 5, 2));
    expect(r).toBe(CT_INVALID); // a SYN/ACK cannot start a connection
  });
});

describe("conntrack -L / -S / JSON", () => {
  it("prints an assured TCP entry and an unreplied UDP entry as conntrack-tools does", () => {
    const ct = new Conntrack();
    pass(ct, tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.SYN, 1));
    pass(ct, tcp("10.96.0.10", 80, "10.244.1.5", 43210, F.SYN | F.ACK, 9, 2));
    const r = pass(ct, tcp("10.244.1.5", 43210, "10.96.0.10", 80, F.ACK, 2, 10));
    ct.setTime(0.5);
    pass(ct, udp("10.244.1.5", 5353, "10.96.0.10", 53));
    expect(formatEntry(ct, ctIndex(r))).toBe(
      "tcp      6 431999 ESTABLISHED src=10.244.1.5 dst=10.96.0.10 sport=43210 dport=80 src=10.96.0.10 dst=10.244.1.5 sport=80 dport=43210 [ASSURED] mark=0 use=1",
    );
    expect(formatList(ct, { extended: true }).split("\n")[1]).toBe(
      "ipv4     2 udp      17 30 src=10.244.1.5 dst=10.96.0.10 sport=5353 dport=53 [UNREPLIED] src=10.96.0.10 dst=10.244.1.5 sport=53 dport=5353 mark=0 use=1",
    );
    expect(formatStats(ct)).toBe(
      "cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 \n",
    );
    const j = tableJson(ct);
    expect(j.entries[0]!.state).toBe("ESTABLISHED");
    expect(j.entries[0]!.status).toContain("ASSURED");
    expect(j.entries[1]!.original).toMatchObject({ src: "10.244.1.5", sport: 5353, dport: 53 });
  });
});
