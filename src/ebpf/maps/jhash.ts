// jhash() over bytes (include/linux/jhash.h), the hash of the map buckets: the same function the SDK runs in
// WebAssembly (assembly/jhash.ts), so host and program find the same bucket. Words are little-endian.
export { jhash as jhashBytes } from "../../packet/jhash.js";
