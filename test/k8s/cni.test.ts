// The CNI contract: environment + stdin in, result or spec error object out, as kubelet's runtime calls a plugin.
import { describe, expect, it } from "vitest";
import { ipAddr, ipNeigh, ipRoute } from "../../src/net/index.js";
import { HostLocal, emptyLeaseStore, emptyStateFile, maxPods, openSession, workloadVethName, type CniSession } from "../../src/k8s/cni/index.js";

const BRIDGE = {
  cniVersion: "1.0.0",
  name: "cbr0",
  type: "bridge",
  bridge: "cni0",
  isDefaultGateway: true,
  hairpinMode: true,
  ipam: { type: "host-local", ranges: [[{ subnet: "10.244.1.0/29" }]], routes: [{ dst: "10.244.0.0/16" }] },
};
const CALICO = { cniVersion: "1.0.0", name: "k8s-pod-network", type: "calico", nodename: "node", ipam: { type: "calico-ipam", pool: "10.244.0.0/16", blockSize: 26, hint: "10.244.1.0/24" } };
const AWS = { cniVersion: "1.0.0", name: "aws-cni", type: "aws-cni", vethPrefix: "eni", instanceType: "m5.large", nodeIP: "192.168.1.10", subnet: "192.168.1.0/24" };

function env(cmd: string, id: string, extra: Record<string, string> = {}): Record<string, string> {
  return { CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: `/var/run/netns/ns-${id}`, CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin", ...extra };
}

function session(): CniSession {
  return openSession(emptyStateFile("node"));
}

const json = (s: string) => JSON.parse(s) as Record<string, unknown>;

describe("CNI contract (spec 1.0.0)", () => {
  it("VERSION reports the supported versions without needing the other variables", () => {
    const out = session().run({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"1.0.0"}');
    expect(out.exitCode).toBe(0);
    expect(json(out.stdout)).toEqual({ cniVersion: "1.0.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0"] });
  });

  it("bridge ADD: result with interfaces, sandbox, IP with interface index and gateway, routes; the node is wired", () => {
    const s = session();
    const out = s.run(env("ADD", "c1", { CNI_ARGS: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web" }), JSON.stringify(BRIDGE));
    expect(out.exitCode).toBe(0);
    const r = json(out.stdout) as { cniVersion: string; interfaces: { name: string; sandbox?: string }[]; ips: unknown[]; routes: unknown[] };
    expect(r.cniVersion).toBe("1.0.0");
    expect(r.interfaces.map((i) => i.name)).toEqual(["cni0", expect.stringMatching(/^veth[0-9a-f]{8}$/), "eth0"]);
    expect(r.interfaces[2]!.sandbox).toBe("/var/run/netns/ns-c1");
    expect(r.ips).toEqual([{ address: "10.244.1.2/29", gateway: "10.244.1.1", interface: 2 }]);
    expect(r.routes).toEqual([{ dst: "10.244.0.0/16" }, { dst: "0.0.0.0/0", gw: "10.244.1.1" }]);
    const pod = s.ctx.world.ns("ns-c1");
    expect(ipRoute(pod)).toBe("default via 10.244.1.1 dev eth0 \n10.244.0.0/16 via 10.244.1.1 dev eth0 \n10.244.1.0/29 dev eth0 proto kernel scope link src 10.244.1.2 \n".replace(/ \n/g, "\n"));
    expect(ipAddr(s.ctx.host, "cni0")).toContain("inet 10.244.1.1/29 brd 10.244.1.7 scope global cni0");
    expect(s.ctx.host.sysctl.ipForward).toBe(true);
    const veth = s.ctx.host.dev(r.interfaces[1]!.name);
    expect(veth.master?.name).toBe("cni0");
    expect(veth.hairpin).toBe(true);
  });

  it("CHECK passes after ADD; DEL releases the address and removes the veth; DEL again succeeds", () => {
    const s = session();
    expect(s.run(env("ADD", "c1"), JSON.stringify(BRIDGE)).exitCode).toBe(0);
    expect(s.run(env("CHECK", "c1"), JSON.stringify(BRIDGE))).toMatchObject({ exitCode: 0, stdout: "" });
    expect(s.run(env("DEL", "c1"), JSON.stringify(BRIDGE))).toMatchObject({ exitCode: 0, stdout: "" });
    expect(s.ctx.host.deviceList().filter((d) => d.name.startsWith("veth"))).toEqual([]);
    expect(s.run(env("DEL", "c1"), JSON.stringify(BRIDGE)).exitCode).toBe(0);
    expect(s.run(env("CHECK", "c1"), JSON.stringify(BRIDGE)).exitCode).toBe(1);
    // The released address is handed out again after the range wraps.
    const ips = ["c2", "c3", "c4", "c5", "c6"].map((id) => (json(s.run(env("ADD", id), JSON.stringify(BRIDGE)).stdout) as { ips: { address: string }[] }).ips[0]!.address);
    expect(ips).toEqual(["10.244.1.3/29", "10.244.1.4/29", "10.244.1.5/29", "10.244.1.6/29", "10.244.1.2/29"]);
  });

  it("host-local: exhaustion is the plugin's error object with a non-zero exit; nothing is half-applied", () => {
    const s = session();
    for (const id of ["a", "b", "c", "d", "e"]) expect(s.run(env("ADD", id), JSON.stringify(BRIDGE)).exitCode).toBe(0);
    const out = s.run(env("ADD", "f"), JSON.stringify(BRIDGE));
    expect(out.exitCode).toBe(1);
    expect(json(out.stdout)).toEqual({ cniVersion: "1.0.0", code: 999, msg: "failed to allocate for range 0: no IP addresses available in range set: 10.244.1.1-10.244.1.6" });
    expect(s.ctx.world.ns("ns-f").byName.has("eth0")).toBe(false);
  });

  it("host-local ADD is idempotent per container; a repeated plugin ADD fails without losing the lease", () => {
    const store = emptyLeaseStore();
    const ipam = new HostLocal(store, "cbr0", BRIDGE.ipam);
    const a = ipam.add("c1", "eth0");
    expect(ipam.add("c1", "eth0")).toEqual(a);
    expect(ipam.add("c1", "net1").ips[0]!.address).toBe("10.244.1.3/29");
    expect(ipam.del("c1", "eth0")).toEqual(["10.244.1.2"]);
    expect(ipam.del("c1", "eth0")).toEqual([]);
    const s = session();
    const first = json(s.run(env("ADD", "c1"), JSON.stringify(BRIDGE)).stdout) as { ips: { address: string }[] };
    const again = s.run(env("ADD", "c1"), JSON.stringify(BRIDGE));
    // The runtime must DEL before a second ADD: the interface exists, the plugin says so, the lease stays.
    expect(again.exitCode).toBe(1);
    expect(again.error!.message).toContain("already exists");
    expect(Object.keys(s.ctx.state.leases.networks["/var/lib/cni/networks/cbr0"]!.leases)).toEqual([first.ips[0]!.address.split("/")[0]]);
  });

  const errorCases: [string, Record<string, string>, string, number, string][] = [
    ["no CNI_COMMAND", {}, JSON.stringify(BRIDGE), 4, "required env variables [CNI_COMMAND] missing"],
    ["unknown command", { CNI_COMMAND: "ATTACH" }, JSON.stringify(BRIDGE), 4, "unknown CNI_COMMAND: ATTACH"],
    ["ADD without CNI_NETNS", { CNI_COMMAND: "ADD", CNI_CONTAINERID: "x", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" }, JSON.stringify(BRIDGE), 4, "required env variables [CNI_NETNS] missing"],
    ["bad container id", env("ADD", "x", { CNI_CONTAINERID: "-bad id" }), JSON.stringify(BRIDGE), 4, "invalid characters in containerID"],
    ["interface name too long", env("ADD", "x", { CNI_IFNAME: "a-very-long-ifname" }), JSON.stringify(BRIDGE), 4, "interface name is invalid: a-very-long-ifname"],
    ["stdin not JSON", env("ADD", "x"), "{cniVersion", 6, "decoding version from network config"],
    ["unsupported version", env("ADD", "x"), JSON.stringify({ ...BRIDGE, cniVersion: "9.9.9" }), 1, 'incompatible CNI versions; config is "9.9.9"'],
    ["CHECK below 0.4.0", env("CHECK", "x"), JSON.stringify({ ...BRIDGE, cniVersion: "0.3.1" }), 1, 'config version "0.3.1" does not allow CHECK'],
    ["no network name", env("ADD", "x"), JSON.stringify({ ...BRIDGE, name: "" }), 7, "missing network name"],
    ["unknown plugin type", env("ADD", "x"), JSON.stringify({ ...BRIDGE, type: "weave" }), 7, 'failed to find plugin "weave"'],
    ["IPv6 range", env("ADD", "x"), JSON.stringify({ ...BRIDGE, ipam: { type: "host-local", ranges: [[{ subnet: "fd00::/64" }]] } }), 2, "IPv6 ranges are not modelled"],
    ["CHECK of an unknown container", env("CHECK", "ghost"), JSON.stringify(BRIDGE), 3, "container ghost has no network namespace"],
  ];
  it.each(errorCases)("error: %s", (_name, e, stdin, code, msg) => {
    const out = session().run(e, stdin);
    expect(out.exitCode).toBe(1);
    const o = json(out.stdout) as { code: number; msg: string; cniVersion: string };
    expect(o.code).toBe(code);
    expect(o.msg).toContain(msg);
    expect(typeof o.cniVersion).toBe("string");
  });

  it("older config versions get IPs with version 4 (0.3.x/0.4.0 result format)", () => {
    const out = session().run(env("ADD", "c1"), JSON.stringify({ ...BRIDGE, cniVersion: "0.4.0" }));
    expect((json(out.stdout) as { ips: unknown[] }).ips).toEqual([{ version: "4", address: "10.244.1.2/29", gateway: "10.244.1.1", interface: 2 }]);
  });
});

describe("calico plugin (Gen 2 veth + /32 + proxy_arp)", () => {
  it("names the host veth cali + sha1(namespace.pod)[:11], a /32 in the pod, a route on the host, proxy_arp on", () => {
    const s = session();
    const e = env("ADD", "c1", { CNI_ARGS: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0" });
    const out = s.run(e, JSON.stringify(CALICO));
    expect(out.exitCode).toBe(0);
    const name = workloadVethName("cali", { command: "ADD", containerId: "c1", netns: "", ifname: "eth0", path: "", args: { K8S_POD_NAMESPACE: "shop", K8S_POD_NAME: "web-0" } });
    // sha1("shop.web-0") = 0b6c5b3d0f5...: the same name Calico gives the workload.
    expect(name).toMatch(/^cali[0-9a-f]{11}$/);
    expect(json(out.stdout)).toMatchObject({ ips: [{ address: "10.244.1.0/32", interface: 1 }], interfaces: [{ name, mac: "ee:ee:ee:ee:ee:ee" }, { name: "eth0", sandbox: "/var/run/netns/ns-c1" }] });
    expect(ipRoute(s.ctx.host)).toBe(`10.244.1.0 dev ${name} scope link \n`.replace(" \n", "\n"));
    expect(s.ctx.host.dev(name).proxyArp).toBe(true);
    expect(ipRoute(s.ctx.world.ns("ns-c1"))).toBe("default via 169.254.1.1 dev eth0\n169.254.1.1 dev eth0 scope link\n");
    expect(s.run(env("CHECK", "c1", { CNI_ARGS: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0" }), JSON.stringify(CALICO)).exitCode).toBe(0);
    s.run(env("DEL", "c1", { CNI_ARGS: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0" }), JSON.stringify(CALICO));
    expect(ipRoute(s.ctx.host)).toBe("");
    expect(s.ctx.state.calico!.blocks).toEqual([{ cidr: "10.244.1.0/26", node: "node", used: {} }]);
  });

  it("claims a second block when the first is full", () => {
    const s = session();
    const conf = JSON.stringify({ ...CALICO, ipam: { ...CALICO.ipam, blockSize: 30 } });
    const ips = ["a", "b", "c", "d", "e"].map((id) => (json(s.run(env("ADD", id), conf).stdout) as { ips: { address: string }[] }).ips[0]!.address);
    expect(ips).toEqual(["10.244.1.0/32", "10.244.1.1/32", "10.244.1.2/32", "10.244.1.3/32", "10.244.1.4/32"]);
    expect(s.ctx.state.calico!.blocks.map((b) => b.cidr)).toEqual(["10.244.1.0/30", "10.244.1.4/30"]);
  });

  it("a pool of 2^30 blocks: claims the hint's first free block without listing the pool (was out of memory)", () => {
    const s = session();
    const conf = JSON.stringify({ ...CALICO, ipam: { ...CALICO.ipam, pool: "0.0.0.0/0", blockSize: 30 } });
    const ips = ["a", "b", "c", "d", "e"].map((id) => (json(s.run(env("ADD", id), conf).stdout) as { ips: { address: string }[] }).ips[0]!.address);
    expect(ips).toEqual(["10.244.1.0/32", "10.244.1.1/32", "10.244.1.2/32", "10.244.1.3/32", "10.244.1.4/32"]);
    // Without a hint the pool's blocks go in order from its start.
    const noHint = JSON.stringify({ ...CALICO, ipam: { type: "calico-ipam", pool: "0.0.0.0/0", blockSize: 32 } });
    expect((json(session().run(env("ADD", "a"), noHint).stdout) as { ips: { address: string }[] }).ips[0]!.address).toBe("0.0.0.0/32");
  });
});

describe("aws-cni plugin (Gen 3 VPC addresses from ENI secondary IPs)", () => {
  it("m5.large: max pods 29 = 3 x (10 - 1) + 2; pod addresses are the 27 secondary IPs, the 28th ADD fails", () => {
    expect(maxPods("m5.large")).toBe(29);
    const s = session();
    const got: string[] = [];
    for (let i = 0; i < 27; i++) {
      const out = s.run(env("ADD", `p${i}`), JSON.stringify(AWS));
      expect(out.exitCode).toBe(0);
      got.push((json(out.stdout) as { ips: { address: string }[] }).ips[0]!.address);
    }
    // ENI 0 (primary 192.168.1.10) secondaries first, then ENI 1's (its primary is not given to pods).
    expect(got.slice(0, 10)).toEqual(["192.168.1.4/32", "192.168.1.5/32", "192.168.1.6/32", "192.168.1.7/32", "192.168.1.8/32", "192.168.1.9/32", "192.168.1.11/32", "192.168.1.12/32", "192.168.1.13/32", "192.168.1.15/32"]);
    expect(new Set(got).size).toBe(27);
    const out = s.run(env("ADD", "p27"), JSON.stringify(AWS));
    expect(out.exitCode).toBe(1);
    expect(json(out.stdout)).toEqual({
      cniVersion: "1.0.0",
      code: 999,
      msg: "add cmd: failed to assign an IP address to container",
      details: "AssignPodIPv4Address: no available IP/Prefix addresses (m5.large: 3 ENIs x 10 IPv4 addresses, 27 pod addresses in use)",
    });
    // DEL frees one; the next ADD gets it.
    s.run(env("DEL", "p3"), JSON.stringify(AWS));
    expect((json(s.run(env("ADD", "p28"), JSON.stringify(AWS)).stdout) as { ips: { address: string }[] }).ips[0]!.address).toBe("192.168.1.7/32");
  });

  it("pod side: /32, link route and permanent ARP entry for 169.254.1.1 at the host veth's MAC", () => {
    const s = session();
    const out = json(s.run(env("ADD", "c1", { CNI_ARGS: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=api" }), JSON.stringify(AWS)).stdout) as { interfaces: { name: string; mac: string }[] };
    const host = out.interfaces[0]!;
    expect(host.name).toMatch(/^eni[0-9a-f]{11}$/);
    const pod = s.ctx.world.ns("ns-c1");
    expect(ipNeigh(pod)).toBe(`169.254.1.1 dev eth0 lladdr ${host.mac} PERMANENT\n`);
    expect(ipRoute(s.ctx.host)).toBe(`192.168.1.4 dev ${host.name} scope link\n`);
  });

  it("unknown instance type is a config error", () => {
    const out = session().run(env("ADD", "c1"), JSON.stringify({ ...AWS, instanceType: "z9.huge" }));
    expect(json(out.stdout)).toMatchObject({ code: 7 });
  });
});

describe("state file: consecutive invocations see each other", () => {
  it("replays the journal into the same model", () => {
    const s = session();
    s.run(env("ADD", "c1"), JSON.stringify(BRIDGE));
    s.run(env("ADD", "c2"), JSON.stringify(BRIDGE));
    s.run(env("DEL", "c1"), JSON.stringify(BRIDGE));
    const text = JSON.stringify(s.file);
    const again = openSession(JSON.parse(text));
    expect(ipAddr(again.ctx.host)).toBe(ipAddr(s.ctx.host));
    const out = again.run(env("ADD", "c3"), JSON.stringify(BRIDGE));
    expect((json(out.stdout) as { ips: { address: string }[] }).ips[0]!.address).toBe("10.244.1.4/29");
    expect(again.file.journal.length).toBe(4);
  });
});
