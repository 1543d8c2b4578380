import { csumPartial, csumReplace32 } from "../src/packet/checksum.js";
import { runGroup, type BenchOptions } from "./harness.js";

export default async function (opts: BenchOptions): Promise<void> {
  const buf = new Uint8Array(1500);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 31) & 255;
  let sink = 0;
  let addr = 0x0a000001;
  await runGroup(
    "checksum: full vs incremental",
    [
      { name: "csumReplace32 (RFC 1624)", fn: () => { sink ^= csumReplace32(sink & 0xffff, addr, (addr = (addr + 1) >>> 0)); } },
      { name: "csumPartial 20 B (IPv4 header)", fn: () => { sink ^= csumPartial(buf, 0, 20); } },
      { name: "csumPartial 1500 B", fn: () => { sink ^= csumPartial(buf, 0, 1500); } },
    ],
    opts,
  );
  if (sink === 0.5) console.log(sink);
}
