// tcbox SDK: what `import { ... } from "tcbox"` gives a program (bpf_helpers.h + Cilium's bpf/lib, in
// AssemblyScript). A program exports entry points `(skb: __sk_buff) => i32` returning TC_ACT_* verdicts.
export * from "./abi";
export * from "./ctx";
export * from "./errno";
export * from "./packet";
export * from "./csum";
export * from "./jhash";
export * from "./maps";
export * from "./ringbuf";
export * from "./helpers";
export * from "./headers";
export * from "./types";
