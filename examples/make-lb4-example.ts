// Writes examples/lb4.pcap: a client's TCP connection to the ClusterIP 10.96.0.10:80 and the backend's
// replies, a DNS query to 10.96.0.53:53, and a SYN to 10.96.0.20:80 (a Service without backends). With
// examples/lb4-maps.json: `tcbox run --program programs/lb4.ts --pcap examples/lb4.pcap --maps examples/lb4-maps.json`.
// Regenerate: npx tsx examples/make-lb4-example.ts
import { writeFileSync } from "node:fs";
import { buildTcp, buildUdp } from "../src/packet/index.js";
import { writePcap } from "../src/packet/pcap.js";

const C = "10.244.1.5";
const frames = [
  buildTcp({ src: C, dst: "10.96.0.10", sport: 40000, dport: 80, flags: 0x02, seq: 1000 }),
  // The backend is chosen at random: with the default seed tcbox run uses it is the second one, 10.244.3.11.
  buildTcp({ src: "10.244.3.11", dst: C, sport: 8080, dport: 40000, flags: 0x12, seq: 5000, ack: 1001 }),
  buildTcp({ src: C, dst: "10.96.0.10", sport: 40000, dport: 80, flags: 0x18, seq: 1001, ack: 5001, payload: new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n") }),
  buildUdp({ src: C, dst: "10.96.0.53", sport: 53000, dport: 53, payload: new Uint8Array(29).fill(0x41) }),
  buildTcp({ src: C, dst: "10.96.0.20", sport: 40001, dport: 80, flags: 0x02 }),
];
writeFileSync(new URL("./lb4.pcap", import.meta.url), writePcap(frames.map((data, i) => ({ tsNs: 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n, data }))));
