// kube-proxy IPVS mode across syncs: graceful termination of real servers (graceful_termination.go) over the
// kernel model's connection table. Packets in (client SYN/ACK/FIN, server replies), then what `ipvsadm -Ln` and
// `ipvsadm -Lnc` show and where the next packets go, as endpoints leave and come back.
import { describe, expect, it } from "vitest";
import { loadCluster } from "../../src/k8s/cluster.js";
import { generateIpvs, RS_CHECK_DELETE_INTERVAL, syncIpvs, type IpvsState } from "../../src/k8s/kube-proxy/ipvs.js";
import { IPVS_DROP, IPVS_REJECT, IPVS_STOLEN, IpvsPath } from "../../src/netfilter/ipvs-conn.js";
import { ipvsadmList, ipvsadmListConns } from "../../src/netfilter/ipvs-format.js";
import { formatIpv4 } from "../../src/packet/addr.js";
import { get32 } from "../../src/packet/checksum.js";
import { F, L3, tcp, udp } from "../netfilter/conntrack-fixtures.js";

const VIP = "172.30.0.41";
const OPTS = { nodeName: "test-node", nodeIPs: ["192.168.0.2"], clusterCIDR: "10.0.0.0/8" };

/**
 * One Service (TCP 80 and UDP 53) with the given endpoint addresses; `affinity` sets sessionAffinity ClientIP.
 * An address ending in "~" is a terminating endpoint that still serves (ready: false, serving: true).
 */
function cluster(eps: string[], affinity = false, withService = true) {
  const svc = `apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: web}
spec:
  clusterIP: ${VIP}
  sessionAffinity: ${affinity ? "ClientIP" : "None"}
  ports: [{name: http, port: 80, protocol: TCP}, {name: dns, port: 53, protocol: UDP}]
---
`;
  const slice = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: ns1, name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [${eps.map((a) => `{addresses: [${a.replace("~", "")}], nodeName: node2${a.endsWith("~") ? ", conditions: {ready: false, serving: true, terminating: true}" : ""}}`).join(", ")}]
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 5353, protocol: UDP}]
`;
  return loadCluster((withService ? svc : "") + slice, "web.yaml", { serviceCIDR: "172.30.0.0/16", nodePortRange: [1, 65535], kubernetesService: false });
}

function node(eps: string[], affinity = false) {
  const st = generateIpvs(cluster(eps, affinity), OPTS);
  const path = new IpvsPath(st.ipvs);
  st.graceful.conns = path.conns;
  return { st, path };
}

/** Send a client packet to the VIP at time t: the verdict and the real server it went to. */
function send(path: IpvsPath, f: Uint8Array, t: number): string {
  const v = path.inbound(f, L3, t);
  return v === IPVS_STOLEN ? formatIpv4(get32(f, L3 + 16)) : v === IPVS_DROP ? "DROP" : v === IPVS_REJECT ? "REJECT" : "ACCEPT";
}
const syn = (sport: number, client = "10.180.9.9") => tcp(client, sport, VIP, 80, F.SYN, 1);
const ack = (sport: number, client = "10.180.9.9") => tcp(client, sport, VIP, 80, F.ACK, 2, 2);

/** A client connection through the handshake; returns its real server. */
function connect(path: IpvsPath, sport: number, t: number, client = "10.180.9.9"): string {
  const rs = send(path, syn(sport, client), t);
  path.outbound(tcp(rs, 8080, client, sport, F.SYN | F.ACK, 1, 2), L3, t);
  send(path, ack(sport, client), t);
  return rs;
}

const rsLines = (st: IpvsState, proto = "TCP") => {
  const text = ipvsadmList(st.ipvs).split("\n");
  const i = text.findIndex((l) => l.startsWith(`${proto}  ${VIP}`));
  const out: string[] = [];
  for (let k = i + 1; k < text.length && text[k]!.startsWith("  ->"); k++) out.push(text[k]!.replace(/\s+/g, " ").trim());
  return out;
};

describe("graceful termination (kube-proxy GracefulTerminationManager + ip_vs)", () => {
  it("a removed TCP real server with a connection: weight 0, keeps its connection, gets no new ones, deleted at the first retry after the connection's end", () => {
    let { st, path } = node(["10.180.0.1", "10.180.0.2"]);
    const busy = connect(path, 40000, 0);
    const other = busy === "10.180.0.1" ? "10.180.0.2" : "10.180.0.1";
    // The endpoint that carries the connection goes away.
    st = syncIpvs(st, cluster([other]), 10);
    expect(rsLines(st)).toEqual([`-> ${busy}:8080 Masq 0 1 0`, `-> ${other}:8080 Masq 1 0 0`].sort());
    // Established traffic still reaches it; every new connection goes to the other one.
    expect(send(path, tcp("10.180.9.9", 40000, VIP, 80, F.ACK | F.PSH, 2, 2, 10), 20)).toBe(busy);
    for (let p = 0; p < 4; p++) expect(connect(path, 41000 + p, 20, `10.180.9.${p + 1}`)).toBe(other);
    // Client closes (FIN → CLOSE_WAIT), server ACKs and FINs (→ TIME_WAIT), client's last ACK: TIME_WAIT, 120 s.
    send(path, tcp("10.180.9.9", 40000, VIP, 80, F.FIN | F.ACK, 12, 2), 30);
    path.outbound(tcp(busy, 8080, "10.180.9.9", 40000, F.ACK, 2, 13), L3, 30);
    path.outbound(tcp(busy, 8080, "10.180.9.9", 40000, F.FIN | F.ACK, 2, 13), L3, 31);
    send(path, tcp("10.180.9.9", 40000, VIP, 80, F.ACK, 13, 3), 31);
    expect(ipvsadmListConns(path.conns, 31)).toContain(`TCP 02:00  TIME_WAIT   10.180.9.9:40000   ${VIP}:80     ${busy}:8080\n`);
    expect(rsLines(st)).toContain(`-> ${busy}:8080 Masq 0 0 1`);
    // Retries run at 0, 60, 120, 180 (the manager's clock starts at the first sync): TIME_WAIT ends at 151.
    for (const [t, present] of [[60, true], [120, true], [150, true], [180, false]] as const) {
      st = syncIpvs(st, cluster([other]), t);
      expect(rsLines(st).some((l) => l.startsWith(`-> ${busy}:`)), `t=${t}`).toBe(present);
    }
    expect(st.graceful.list.size).toBe(0);
    expect(RS_CHECK_DELETE_INTERVAL).toBe(60);
  });

  it("an idle removed real server and a UDP one are deleted at once; a UDP flow to the deleted one is dropped once (expire_nodest_conn), then scheduled anew", () => {
    let { st, path } = node(["10.180.0.1", "10.180.0.2"]);
    const flowTo = send(path, udp("10.180.9.9", 5000, VIP, 53), 0);
    const keep = flowTo === "10.180.0.1" ? "10.180.0.2" : "10.180.0.1";
    st = syncIpvs(st, cluster([keep]), 5);
    expect(rsLines(st, "UDP")).toEqual([`-> ${keep}:5353 Masq 1 0 0`]);
    expect(rsLines(st)).toEqual([`-> ${keep}:8080 Masq 1 0 0`]);
    expect(st.graceful.list.size).toBe(0);
    expect(send(path, udp("10.180.9.9", 5000, VIP, 53), 6)).toBe("DROP");
    expect(send(path, udp("10.180.9.9", 5000, VIP, 53), 7)).toBe(keep);
  });

  it("an endpoint back while draining is deleted and added anew at weight 1: its old connection's next packet is dropped, a SYN from the same port starts over", () => {
    let { st, path } = node(["10.180.0.1"]);
    expect(connect(path, 40000, 0)).toBe("10.180.0.1");
    st = syncIpvs(st, cluster([]), 1);
    expect(rsLines(st)).toEqual(["-> 10.180.0.1:8080 Masq 0 1 0"]);
    // No real server takes new connections: a SYN from another client finds none (ICMP port unreachable).
    expect(send(path, syn(40001, "10.180.9.8"), 2)).toBe("REJECT");
    st = syncIpvs(st, cluster(["10.180.0.1"]), 3);
    expect(rsLines(st)).toEqual(["-> 10.180.0.1:8080 Masq 1 0 0"]);
    expect(st.graceful.list.size).toBe(0);
    expect(send(path, ack(40000), 4)).toBe("DROP");
    expect(send(path, syn(40000), 5)).toBe("10.180.0.1");
    expect(rsLines(st)).toEqual(["-> 10.180.0.1:8080 Masq 1 1 0"]);
  });

  it("conn_reuse_mode: a SYN on a quiesced server's connection from the same client port is scheduled to a live server", () => {
    let { st, path } = node(["10.180.0.1", "10.180.0.2"]);
    const busy = connect(path, 40000, 0);
    const other = busy === "10.180.0.1" ? "10.180.0.2" : "10.180.0.1";
    st = syncIpvs(st, cluster([other]), 1);
    expect(send(path, syn(40000), 2)).toBe(other);
    // The old connection was expired: the quiesced server has none and goes at the next retry.
    st = syncIpvs(st, cluster([other]), 60);
    expect(rsLines(st)).toEqual([`-> ${other}:8080 Masq 1 1 0`]);
  });

  it("sessionAffinity ClientIP: a template pointing at a quiesced server is not used (expire_quiescent_template); -Lnc shows both templates", () => {
    let { st, path } = node(["10.180.0.1", "10.180.0.2"], true);
    const first = connect(path, 40000, 0);
    const other = first === "10.180.0.1" ? "10.180.0.2" : "10.180.0.1";
    expect(connect(path, 40001, 1)).toBe(first);
    st = syncIpvs(st, cluster([other], true), 2);
    expect(connect(path, 40002, 3)).toBe(other);
    const lnc = ipvsadmListConns(path.conns, 3);
    // The old template is unfindable (ports 65535) but lives on while its connections do; the new one is ASSURED.
    expect(lnc).toContain(`TCP 180:00 ASSURED     10.180.9.9:0       ${VIP}:80     ${other}:8080\n`);
    expect(lnc).toMatch(new RegExp(`TCP \\d+:\\d+ +ASSURED +10\\.180\\.9\\.9:0 +${VIP.replace(/\./g, "\\.")}:65535 +${first.replace(/\./g, "\\.")}:65535\\n`));
    expect(lnc.split("\n").filter((l) => l.includes("ESTABLISHED")).length).toBe(3);
  });

  it("terminating endpoints: one that starts terminating while another is ready drains at weight 0; when all are terminating they serve again (re-added at weight 1)", () => {
    let { st, path } = node(["10.180.0.1", "10.180.0.2"]);
    const busy = connect(path, 40000, 0);
    const other = busy === "10.180.0.1" ? "10.180.0.2" : "10.180.0.1";
    st = syncIpvs(st, cluster([`${busy}~`, other]), 1);
    expect(rsLines(st)).toEqual([`-> ${busy}:8080 Masq 0 1 0`, `-> ${other}:8080 Masq 1 0 0`].sort());
    expect(connect(path, 40001, 2, "10.180.9.8")).toBe(other);
    expect(send(path, ack(40000), 3)).toBe(busy);
    // Both terminating: kube-proxy falls back to serving+terminating endpoints, so the draining one is wanted
    // again: deleted and added anew, and the connection it carried is dropped at its next packet.
    st = syncIpvs(st, cluster([`${busy}~`, `${other}~`]), 4);
    expect(rsLines(st)).toEqual([`-> ${busy}:8080 Masq 1 0 0`, `-> ${other}:8080 Masq 1 1 0`].sort());
    expect(send(path, ack(40000), 5)).toBe("DROP");
  });

  it("a Service that goes away takes its virtual servers with it", () => {
    let { st } = node(["10.180.0.1"]);
    st = syncIpvs(st, cluster(["10.180.0.1"], false, false), 1);
    expect(ipvsadmList(st.ipvs)).not.toContain(VIP);
    expect(st.stats.virtualServers).toBe(0);
    expect(st.ipvs.lookup(6, st.ipvs.services[0]!.addr, 80)).toBe(-1);
  });
});
