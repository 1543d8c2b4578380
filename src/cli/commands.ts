// Every subcommand registers itself here: one file per command in src/cli/.
import type { Command } from "commander";
import { register as kubeProxy } from "./kube-proxy.js";
import { register as cni } from "./cni.js";
import { register as topology } from "./topology.js";
import { register as trace } from "./trace.js";
import { register as pcap } from "./pcap.js";
import { register as conntrack } from "./conntrack.js";
import { register as build } from "./build.js";
import { register as map } from "./map.js";
import { register as run } from "./run.js";
import { register as ip } from "./ip.js";
import { register as scenario } from "./scenario.js";
import { register as policy } from "./policy.js";
import { register as bench } from "./bench.js";
import { register as compare } from "./compare.js";
import { register as demo } from "./demo.js";

export type Register = (program: Command) => void;

export const commands: Register[] = [kubeProxy, cni, topology, trace, pcap, conntrack, build, map, run, ip, scenario, policy, bench, compare, demo];
