// The kernel is the referee for the checksum helpers: each case runs once through tcbox's SDK (helpers_probe.ts)
// and once through the real bpf_l3_csum_replace / bpf_l4_csum_replace / bpf_csum_diff, in a tiny BPF_PROG_TYPE_SCHED_CLS
// program assembled by hand and run with BPF_PROG_TEST_RUN (python ctypes, bpf(2); no clang needed). Return
// values and output bytes must agree. Needs root (CAP_BPF) on x86-64; skips with a message otherwise.
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { buildTcp, buildUdp } from "../../src/packet/index.js";
import { BpfKernel, type BpfObject } from "../../src/ebpf/kernel.js";
import { PacketBatch } from "../../src/ebpf/batch.js";

const PY = String.raw`
import ctypes, struct, json, sys, os
libc = ctypes.CDLL(None, use_errno=True)
def bpf(cmd, attr):
    attr = attr + b"\0" * (128 - len(attr))
    buf = ctypes.create_string_buffer(attr, len(attr))
    r = libc.syscall(321, cmd, buf, len(attr))
    if r < 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    return r, buf.raw
def ins(op, dst=0, src=0, off=0, imm=0):
    if imm >= 2**31: imm -= 2**32
    return struct.pack("<BBhi", op, (src << 4) | dst, off, imm)
MOV_IMM, MOV_REG, ADD_IMM, ST_W, CALL, EXIT = 0xb7, 0xbf, 0x07, 0x62, 0x85, 0x95
def load(prog):
    insns = ctypes.create_string_buffer(prog); lic = ctypes.create_string_buffer(b"GPL"); log = ctypes.create_string_buffer(65536)
    attr = struct.pack("<IIQQIIQII16s", 3, len(prog) // 8, ctypes.addressof(insns), ctypes.addressof(lic), 1, 65536, ctypes.addressof(log), 0, 0, b"tcbx_csum")
    try:
        return bpf(5, attr)[0]
    except OSError as e:
        raise OSError(str(e) + ": " + log.value.decode(errors="replace"))
def test_run(fd, pkt):
    data = ctypes.create_string_buffer(pkt, len(pkt)); out = ctypes.create_string_buffer(len(pkt) + 256)
    attr = struct.pack("<IIIIQQII", fd, 0, len(pkt), len(pkt) + 256, ctypes.addressof(data), ctypes.addressof(out), 1, 0)
    _, raw = bpf(10, attr)
    _, retval, _, size_out = struct.unpack_from("<IIII", raw, 0)
    return retval, out.raw[:size_out]
results = []
for c in json.load(sys.stdin):
    pkt = bytes.fromhex(c["pkt"])
    if c["op"] in ("l3", "l4"):
        off, frm, to, flags = c["args"]
        prog = ins(MOV_REG, 6, 1) + ins(MOV_REG, 1, 6) + ins(MOV_IMM, 2, imm=off) + ins(MOV_IMM, 3, imm=frm) + ins(MOV_IMM, 4, imm=to) + ins(MOV_IMM, 5, imm=flags) + ins(CALL, imm=10 if c["op"] == "l3" else 11) + ins(EXIT)
    else:
        frm, to, seed = c["args"]
        words = [struct.unpack_from("<I", pkt, i)[0] for i in range(0, len(frm) // 2 + len(to) // 2, 4)]
        prog = b"".join(ins(ST_W, 10, off=-64 + 4 * i, imm=w) for i, w in enumerate(words))
        nf = len(frm) // 2
        prog += ins(MOV_REG, 1, 10) + ins(ADD_IMM, 1, imm=-64) + ins(MOV_IMM, 2, imm=nf) + ins(MOV_REG, 3, 10) + ins(ADD_IMM, 3, imm=-64 + nf) + ins(MOV_IMM, 4, imm=len(to) // 2) + ins(MOV_IMM, 5, imm=seed) + ins(CALL, imm=28) + ins(EXIT)
    fd = load(prog)
    retval, out = test_run(fd, pkt)
    os.close(fd)
    results.append({"retval": retval, "data": out.hex()})
json.dump(results, sys.stdout)
`;

interface Case {
  op: "l3" | "l4" | "diff";
  pkt: Uint8Array;
  args: number[];
  /** diff only: bytes of from and to (taken from the start of pkt). */
  from?: number;
  to?: number;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const raw32 = (b: Uint8Array, off: number) => (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
const raw16 = (b: Uint8Array, off: number) => b[off]! | (b[off + 1]! << 8);

function cases(): Case[] {
  const tcp = buildTcp({ src: "10.0.0.1", dst: "10.96.0.10", sport: 40000, dport: 80, flags: 0x18, payload: new Uint8Array([1, 2, 3]) });
  const udp = buildUdp({ src: "172.16.5.4", dst: "10.96.0.10", sport: 5353, dport: 53, payload: new Uint8Array([9, 8, 7, 6]) });
  const nocsum = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, udpCsum: false });
  const out: Case[] = [];
  let x = 12345;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  for (let i = 0; i < 12; i++) {
    const to = rnd();
    out.push({ op: "l3", pkt: tcp, args: [24, raw32(tcp, 30), to, 4] });
    out.push({ op: "l4", pkt: i % 2 ? tcp : udp, args: [i % 2 ? 50 : 40, raw32(i % 2 ? tcp : udp, 30), to, 0x10 | 4 | (i % 2 ? 0 : 0x20)] });
    out.push({ op: "l4", pkt: tcp, args: [50, raw16(tcp, 36), to & 0xffff, 2] });
  }
  out.push({ op: "l4", pkt: nocsum, args: [40, raw32(nocsum, 30), 0x01020304, 0x20 | 0x10 | 4] }); // zero UDP checksum left alone
  out.push({ op: "l4", pkt: nocsum, args: [40, raw32(nocsum, 30), 0x01020304, 0x40 | 0x20 | 0x10 | 4] }); // ... unless MARK_ENFORCE
  out.push({ op: "l3", pkt: tcp, args: [24, 0, 0x12345678, 0] }); // size 0: a csum_diff result
  out.push({ op: "l3", pkt: tcp, args: [24, 1, 0x12345678, 0] }); // size 0 with from != 0: -EINVAL
  out.push({ op: "l3", pkt: tcp, args: [24, 0, 0, 3] }); // bad size
  out.push({ op: "l3", pkt: tcp, args: [25, 0, 0, 4] }); // odd offset
  out.push({ op: "l4", pkt: tcp, args: [tcp.length - 1, 0, 0, 4] }); // past the end
  out.push({ op: "l3", pkt: tcp, args: [24, 0, 0, 0x10 | 4] }); // pseudo-header flag is not for l3
  for (const [f, t, seed] of [[4, 4, 0], [0, 8, 0], [8, 0, 0], [12, 12, 0xffff0000], [16, 16, 7], [4, 16, 0xffffffff]] as const) {
    const data = Uint8Array.from({ length: 64 }, () => rnd() & 255);
    out.push({ op: "diff", pkt: data, args: [f, t, seed], from: f, to: t });
  }
  return out;
}

function kernelRun(cs: Case[]): { retval: number; data: string }[] | string {
  const input = JSON.stringify(cs.map((c) => ({ op: c.op, pkt: hex(c.pkt), args: c.op === "diff" ? ["00".repeat(c.from!), "00".repeat(c.to!), c.args[2]] : c.args.map((a) => a >>> 0) })));
  const r = spawnSync("/usr/bin/python3", ["-c", PY], { input, encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) return (r.stderr || r.error?.message || "python failed").trim().split("\n").at(-1)!;
  return JSON.parse(r.stdout);
}

const canRun = typeof process.getuid === "function" && process.getuid() === 0 && process.arch === "x64";
let kernelResults: { retval: number; data: string }[] | string = "not run";
let probe: BpfObject;
let kernel: BpfKernel;
const CASES = cases();

beforeAll(async () => {
  if (!canRun) return;
  kernelResults = kernelRun(CASES);
  kernel = new BpfKernel();
  probe = await kernel.load("programs/examples/helpers_probe.ts");
});

describe.skipIf(!canRun)("checksum helpers vs the kernel (BPF_PROG_TEST_RUN)", () => {
  it("tcbox and the kernel agree on every case (return value and bytes)", (ctx) => {
    if (typeof kernelResults === "string") {
      ctx.skip(`bpf(2) unavailable: ${kernelResults}`);
      return;
    }
    const res = kernelResults;
    expect(res.length).toBe(CASES.length);
    CASES.forEach((c, i) => {
      const batch = new PacketBatch(kernel.mem);
      const entry = c.op === "l3" ? "l3_replace" : c.op === "l4" ? "l4_replace" : "diff";
      const cb = c.op === "diff" ? [c.from!, c.to!, c.args[2]!] : c.args;
      batch.add(c.pkt, { cb });
      probe.program(entry).runBatch(batch);
      const ours = { retval: batch.mark(0) >>> 0, data: hex(batch.packet(0)) };
      expect([i, c.op, c.args, ours]).toEqual([i, c.op, c.args, res[i]]);
    });
  });
});

if (!canRun) it.skip("checksum helpers vs the kernel: needs root on x86-64", () => {});
