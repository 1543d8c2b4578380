// Each helper against its kernel definition: checksum replaces against a full recomputation, csum_diff against
// the one's-complement sum, jhash against lookup3's published vectors, redirect's flag rules.
import { beforeAll, describe, expect, it } from "vitest";
import { buildTcp, buildUdp, ipv4HeaderChecksum, l4Checksum, get16, get32, set32, set16, csumFold } from "../../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import { SKB_CB } from "../../src/ebpf/abi.js";
import { PacketBatch } from "../../src/ebpf/batch.js";
import { jhashBytes } from "../../src/ebpf/maps/jhash.js";

let obj: BpfObject;
let kernel: BpfKernel;
beforeAll(async () => {
  kernel = new BpfKernel();
  obj = await kernel.load("programs/examples/helpers_probe.ts");
});

function run(entry: string, pkt: Uint8Array, cb: number[] = [], mark = 0) {
  const batch = new PacketBatch(kernel.mem);
  batch.add(pkt, { cb, mark });
  obj.program(entry).runBatch(batch);
  const r = { retval: batch.retval(0), mark: batch.mark(0) | 0, cb: [0, 1, 2, 3, 4].map((k) => batch.field(0, SKB_CB + 4 * k)), packet: batch.packet(0).slice(), batch };
  return r;
}

// Raw network-order word as the program sees it with a 32-bit little-endian load (C's ip4->daddr on x86).
const raw32 = (b: Uint8Array, off: number) => (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
const raw16 = (b: Uint8Array, off: number) => b[off]! | (b[off + 1]! << 8);
const IP = 14;
const ipValid = (p: Uint8Array) => ipv4HeaderChecksum(p, IP, 20) === get16(p, IP + 10);
const l4Valid = (p: Uint8Array, proto: number) => {
  const csumOff = proto === 6 ? 16 : 6;
  const len = get16(p, IP + 2) - 20;
  return l4Checksum(p, 34, len, csumOff, get32(p, IP + 12), get32(p, IP + 16), proto) === get16(p, 34 + csumOff);
};

describe("l3_csum_replace / l4_csum_replace", () => {
  const tcp = buildTcp({ src: "10.0.0.1", dst: "10.96.0.10", sport: 40000, dport: 80, flags: 0x18, payload: new Uint8Array([1, 2, 3, 4, 5]) });
  const udp = buildUdp({ src: "10.0.0.1", dst: "10.96.0.10", sport: 40000, dport: 53, payload: new Uint8Array([9, 8, 7]) });
  const NEW = [0x0a000001, 0xc0a80a0b, 0xffffffff, 0, 0x0a600001];

  it.each(NEW)("address rewrite to %i: both helpers give what a full recompute gives (TCP and UDP)", (to) => {
    for (const [pkt, proto] of [[tcp, 6], [udp, 17]] as const) {
      const p = pkt.slice();
      const from = raw32(p, IP + 16);
      set32(p, IP + 16, to);
      const toRaw = raw32(p, IP + 16);
      set32(p, IP + 16, get32(pkt, IP + 16)); // the helpers run before the store, as in lb4
      let r = run("l3_replace", p, [IP + 10, from, toRaw, 4]);
      expect(r.mark).toBe(0);
      r = run("l4_replace", r.packet, [34 + (proto === 6 ? 16 : 6), from, toRaw, 0x10 | 4 | (proto === 17 ? 0x20 : 0)]);
      expect(r.mark).toBe(0);
      const out = r.packet;
      set32(out, IP + 16, to);
      expect(ipValid(out)).toBe(true);
      expect(l4Valid(out, proto)).toBe(true);
    }
  });

  it("16-bit port rewrite (size 2) keeps the TCP checksum valid", () => {
    const p = tcp.slice();
    const from = raw16(p, 36);
    const r = run("l4_replace", p, [34 + 16, from, raw16(Uint8Array.of(0x1f, 0x90), 0), 2]);
    const out = r.packet;
    set16(out, 36, 8080);
    expect(r.mark).toBe(0);
    expect(l4Valid(out, 6)).toBe(true);
  });

  it("csum_diff with size 0 (diff form) fixes both checksums like Cilium's multi-word rewrites", () => {
    for (const [pkt, proto] of [[tcp, 6], [udp, 17]] as const) {
      const r = run("rewrite_by_diff", pkt.slice(), [IP + 16, 0xc0a80001, IP + 10, 34 + (proto === 6 ? 16 : 6)]);
      expect(r.mark).toBe(0);
      expect(get32(r.packet, IP + 16)).toBe(0xc0a80001);
      expect(ipValid(r.packet)).toBe(true);
      expect(l4Valid(r.packet, proto)).toBe(true);
    }
  });

  it.each([
    { name: "unknown flag bits", entry: "l3_replace", cb: [IP + 10, 0, 0, 0x10 | 4], want: -22 },
    { name: "size 3", entry: "l3_replace", cb: [IP + 10, 0, 0, 3], want: -22 },
    { name: "size 0 with from != 0", entry: "l4_replace", cb: [50, 1, 0, 0], want: -22 },
    { name: "odd offset", entry: "l3_replace", cb: [IP + 11, 0, 0, 4], want: -14 },
    { name: "offset past the packet", entry: "l4_replace", cb: [tcp.length, 0, 0, 4], want: -14 },
    { name: "offset > 0xffff", entry: "l4_replace", cb: [0x10000, 0, 0, 4], want: -14 },
  ])("$name: $want", ({ entry, cb, want }) => {
    const r = run(entry, tcp.slice(), cb);
    expect(r.mark).toBe(want);
    expect(Buffer.from(r.packet).equals(Buffer.from(tcp))).toBe(true);
  });

  it("BPF_F_MARK_MANGLED_0: a zero UDP checksum stays 0; a result of 0 is written as 0xffff", () => {
    const nocsum = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, udpCsum: false });
    let r = run("l4_replace", nocsum.slice(), [40, raw32(nocsum, 30), 0x01020304, 0x20 | 0x10 | 4]);
    expect(r.mark).toBe(0);
    expect(get16(r.packet, 40)).toBe(0);
    // Pick `to` so the new checksum folds to 0: with check c, replacing from=f by t gives ~(~c + ~f + t).
    const p = udp.slice();
    const c = get16(p, 40);
    const f = get16(p, 30); // the high half of the destination address, as a 16-bit field
    const t = csumFold((~c & 0xffff) + 0xffff) === 0 ? 0 : (0xffff - ((~c & 0xffff) + (~f & 0xffff)) % 0xffff) % 0xffff;
    const tRaw = ((t & 0xff) << 8) | (t >>> 8);
    r = run("l4_replace", p, [40, raw16(p, 30), tRaw, 0x20 | 0x10 | 2]);
    expect(r.mark).toBe(0);
    const without = run("l4_replace", udp.slice(), [40, raw16(udp, 30), tRaw, 0x10 | 2]);
    expect(get16(without.packet, 40)).toBe(0);
    expect(get16(r.packet, 40)).toBe(0xffff);
  });
});

describe("csum_diff", () => {
  it.each([
    { from: 4, to: 4, seed: 0 },
    { from: 0, to: 8, seed: 0x1234 },
    { from: 12, to: 12, seed: 0xffff0000 },
    { from: 8, to: 0, seed: 0 },
  ])("from $from bytes, to $to bytes, seed $seed: folds like the one's-complement sum of to - from + seed", ({ from, to, seed }) => {
    const data = Uint8Array.from({ length: from + to }, (_, i) => (i * 37 + 11) & 255);
    const r = run("diff", data, [from, to, seed]);
    let sum = seed;
    for (let i = 0; i < from; i += 4) sum += ~raw32(data, i) >>> 0;
    for (let i = from; i < from + to; i += 4) sum += raw32(data, i);
    const fold = (s: number) => {
      while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
      return s;
    };
    expect(fold(r.mark >>> 0)).toBe(fold(sum));
    expect(r.cb[4]).toBe(0);
  });

  it("sizes not multiples of 4 or above 512 bytes: -EINVAL", () => {
    expect(run("diff", new Uint8Array(16), [3, 4, 0]).mark).toBe(-22);
    expect(run("diff", new Uint8Array(600), [300, 300, 0]).mark).toBe(-22);
  });
});

describe("jhash (include/linux/jhash.h = lookup3 hashlittle on little-endian)", () => {
  const four = new TextEncoder().encode("Four score and seven years ago");
  it.each([
    { data: new Uint8Array(0), init: 0, want: 0xdeadbeef },
    { data: new Uint8Array(0), init: 0xdeadbeef, want: 0xbd5b7dde },
    { data: four, init: 0, want: 0x17770551 },
    { data: four, init: 1, want: 0xcd628161 },
  ])("lookup3 vector %#", ({ data, init, want }) => {
    expect(run("hashes", data, [init]).mark >>> 0).toBe(want);
    expect(jhashBytes(data, 0, data.length, init)).toBe(want);
  });

  it("host jhash and program jhash agree on every length 0..40; jhash2 = jhash on whole words", () => {
    const data = Uint8Array.from({ length: 40 }, (_, i) => (i * 131 + 7) & 255);
    for (let n = 0; n <= 40; n++) {
      const r = run("hashes", data.subarray(0, n), [0x5eed]);
      expect(r.mark >>> 0).toBe(jhashBytes(data, 0, n, 0x5eed));
      // jhash2(k, n/4 words, init) hashes the same bytes with the word count folded into the initial value.
      if (n % 4 === 0) expect(r.cb[1]).toBe(jhashBytes(data, 0, n, 0x5eed));
    }
  });
});

describe("redirect / redirect_peer", () => {
  const pkt = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2 });
  it.each([
    { name: "redirect egress", mark: 0, cb: [5, 0], retval: 7, flags: 0 },
    { name: "redirect ingress", mark: 0, cb: [5, 1], retval: 7, flags: 1 },
    { name: "redirect bad flags", mark: 0, cb: [5, 4], retval: 2, flags: undefined },
    { name: "redirect_peer", mark: 1, cb: [9, 0], retval: 7, flags: 2 },
    { name: "redirect_peer with flags", mark: 1, cb: [9, 1], retval: 2, flags: undefined },
  ])("$name -> $retval", ({ mark, cb, retval, flags }) => {
    const r = run("redir", pkt, cb, mark);
    expect(r.retval).toBe(retval);
    if (flags !== undefined) {
      expect(r.batch.redirectIfindex(0)).toBe(cb[0]);
      expect(r.batch.redirectFlags(0)).toBe(flags);
    }
  });
});

describe("prandom, ktime, flow hash, bpf_printk", () => {
  it("prandom varies, ktime is the host clock, the flow hash is stable per flow and nonzero", () => {
    kernel.ktimeNs = 123456789012345n;
    const a = buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1000, dport: 80, flags: 2 });
    const b = buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1001, dport: 80, flags: 2 });
    const r1 = run("misc", a);
    const r2 = run("misc", a);
    const r3 = run("misc", b);
    expect(r1.mark).not.toBe(r2.mark);
    expect(BigInt(r1.cb[0]!) | (BigInt(r1.cb[1]!) << 32n)).toBe(123456789012345n);
    expect(r1.cb[2]).toBe(r2.cb[2]);
    expect(r1.cb[2]).not.toBe(r3.cb[2]);
    expect(r1.cb[2]).not.toBe(0);
    expect(kernel.trace.at(-1)).toBe(`helpers_probe.ts: len ${b.length} from 10.0.0.1`);
  });
});
