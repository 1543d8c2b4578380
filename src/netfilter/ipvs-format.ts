// `ipvsadm -Ln` output (ipvsadm.c print_title / print_service_entry): services sorted by protocol, address and
// port, their real servers sorted by address and port (ipvsadm sorts both before printing). Destination lines keep
// ipvsadm's trailing padding ("%-10u\n"). Deleted services and real servers are not listed.
// `ipvsadm -Lnc` (list_conn / print_conn over /proc/net/ip_vs_conn): one line per connection and persistence
// template, "%-3s %-6s %-11s %-18s %-18s %s" of protocol, remaining time mm:ss (seconds truncated, minutes
// unbounded), state, client, virtual and real server address:port. A template shows client port 0, state NONE or
// ASSURED; one made unfindable (quiescent real server) shows virtual and real server port 65535. The kernel walks
// its randomly seeded hash table; tcbox lists in connection-slot order.
import { formatIpv4 } from "../packet/addr.js";
import type { Ipvs } from "./ipvs.js";
import { CONN, IP_VS_CONN_TAB_SIZE, IPVS_CTPL_STATE_NAMES, IPVS_STATE_NAMES, type IpvsConnTable, TEMPLATE_DEAD } from "./ipvs-conn.js";

const PROTO_NAME: Record<number, string> = { 6: "TCP", 17: "UDP", 132: "SCTP" };
const proto = (p: number) => PROTO_NAME[p] ?? String(p);

export function ipvsadmList(ipvs: Ipvs): string {
  const lines = [
    `IP Virtual Server version 1.2.1 (size=${IP_VS_CONN_TAB_SIZE})`,
    "Prot LocalAddress:Port Scheduler Flags",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
  ];
  const svcs = ipvs.live().sort((a, b) => a.proto - b.proto || a.addr - b.addr || a.port - b.port);
  for (const s of svcs) {
    let line = `${proto(s.proto)}  ${formatIpv4(s.addr)}:${s.port} ${s.scheduler}`;
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

/** `ipvsadm -Lnc` at time `now` (seconds, the connection table's clock): expired entries are freed first. */
export function ipvsadmListConns(t: IpvsConnTable, now: number): string {
  const lines = ["IPVS connection entries", `pro expire ${"state".padEnd(11)} ${"source".padEnd(18)} ${"virtual".padEnd(18)} destination`];
  for (const c of t.entries(now)) {
    const left = Math.max(0, Math.floor(t.expires[c]! - now));
    const expire = `${String(Math.floor(left / 60)).padStart(2, "0")}:${String(left % 60).padStart(2, "0")}`;
    const tpl = t.template[c]!;
    const state = tpl === CONN ? IPVS_STATE_NAMES[t.state[c]!]! : IPVS_CTPL_STATE_NAMES[t.state[c]!]!;
    const dead = tpl === TEMPLATE_DEAD;
    const src = `${formatIpv4(t.caddr[c]!)}:${t.cport[c]}`;
    const vip = `${formatIpv4(t.vaddr[c]!)}:${dead ? 65535 : t.vport[c]}`;
    const dst = `${formatIpv4(t.daddr[c]!)}:${dead ? 65535 : t.dport[c]}`;
    lines.push(`${proto(t.proto[c]!).padEnd(3)} ${expire.padEnd(6)} ${state.padEnd(11)} ${src.padEnd(18)} ${vip.padEnd(18)} ${dst}`);
  }
  return lines.join("\n") + "\n";
}
