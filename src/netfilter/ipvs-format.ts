// `ipvsadm -Ln` output (ipvsadm.c print_title / print_service_entry): services sorted by protocol, address and
// port, their real servers sorted by address and port (ipvsadm sorts both before printing). Destination lines keep
// ipvsadm's trailing padding ("%-10u\n").
import { formatIpv4 } from "../packet/addr.js";
import type { Ipvs } from "./ipvs.js";
import { IP_VS_CONN_TAB_SIZE } from "./ipvs-conn.js";

const PROTO_NAME: Record<number, string> = { 6: "TCP", 17: "UDP", 132: "SCTP" };

export function ipvsadmList(ipvs: Ipvs): string {
  const lines = [
    `IP Virtual Server version 1.2.1 (size=${IP_VS_CONN_TAB_SIZE})`,
    "Prot LocalAddress:Port Scheduler Flags",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
  ];
  const svcs = [...ipvs.services].sort((a, b) => a.proto - b.proto || a.addr - b.addr || a.port - b.port);
  for (const s of svcs) {
    let line = `${PROTO_NAME[s.proto] ?? String(s.proto)}  ${formatIpv4(s.addr)}:${s.port} ${s.scheduler}`;
    if (s.persistent) line += ` persistent ${s.timeout}`;
    lines.push(line);
    const dests = [...s.dests].sort((a, b) => a.addr - b.addr || a.port - b.port);
    for (const d of dests) {
      const name = `${formatIpv4(d.addr)}:${d.port}`;
      lines.push(`  -> ${name.padEnd(28)} ${"Masq".padEnd(7)} ${String(d.weight).padEnd(6)} ${String(d.activeConns).padEnd(10)} ${String(d.inactConns).padEnd(10)}`);
    }
  }
  return lines.join("\n") + "\n";
}
