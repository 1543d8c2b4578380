// Topology scripts: a text file of namespace-prefixed iproute2 commands that builds a World, for `tcbox ip` and
// for tests. One command per line; `#` starts a comment.
//
//   netns add node1                      create a namespace
//   wire underlay node1 eth0             a NIC `eth0` in node1 on the L2 segment `underlay` (created on first use)
//   node1 ip link add cni0 type bridge   any command exec() accepts, run in namespace node1
//   node1 sysctl -w net.ipv4.ip_forward=1
//
// Errors name the file and line: `topo.txt:7: Cannot find device "cni0"`.
import { AddrError } from "../packet/addr.js";
import { NetError } from "./error.js";
import { exec } from "./iproute.js";
import { Segment, createEther } from "./wire.js";
import { World } from "./world.js";

export interface Topology {
  world: World;
  segments: Map<string, Segment>;
}

export function loadTopology(text: string, file = "topology", world = new World()): Topology {
  const segments = new Map<string, Segment>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/#.*$/, "").trim();
    if (line === "") continue;
    const where = `${file}:${i + 1}`;
    const words = line.split(/\s+/);
    try {
      if (words[0] === "netns" && words[1] === "add" && words.length === 3) {
        world.addNamespace(words[2]!);
      } else if (words[0] === "wire") {
        if (words.length !== 4) throw new NetError("usage: wire SEGMENT NAMESPACE IFNAME", where);
        let seg = segments.get(words[1]!);
        if (seg === undefined) {
          seg = new Segment(words[1]!);
          segments.set(words[1]!, seg);
        }
        createEther(world.ns(words[2]!), words[3]!, seg);
      } else {
        if (words.length < 2) throw new NetError(`expected "NAMESPACE COMMAND...", got "${line}"`, where);
        exec(world.ns(words[0]!), words.slice(1).join(" "));
      }
    } catch (e) {
      // What the model refuses (NetError) and addresses that do not parse (AddrError) get the line; anything
      // else is a bug in the model and keeps its stack.
      if (e instanceof NetError || e instanceof AddrError) throw new NetError(e.message, where, e instanceof NetError ? e.errno : 0);
      throw e;
    }
  }
  return { world, segments };
}
