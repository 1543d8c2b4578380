// Map declarations (what a program's map_def() passes) and their validation: the checks the kernel does in
// map_alloc_check / htab_map_alloc_check / trie_alloc / ringbuf_map_alloc, with messages naming the map.
import { VerifierError } from "../errors.js";
import {
  BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_RINGBUF, LPM_MAX_DATA, MAP_TYPE_NAMES, PIN_GLOBAL_NS,
  PIN_NONE, PIN_OBJECT_NS,
} from "./layout.js";

export interface MapSpec {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  pinning: number;
  /** Struct names of key and value (nameof<K>() in the program), for their layouts. */
  keyType: string;
  valueType: string;
}

/** BPF_OBJ_NAME_LEN - 1: names longer than 15 bytes are truncated by the kernel; tcbox keeps them whole but limits them. */
const MAX_NAME = 64;
const PAGE = 4096;

export function validateSpec(s: MapSpec, where: string): void {
  const validName = /^[A-Za-z0-9_.]+$/.test(s.name) && s.name.length <= MAX_NAME;
  // An invalid name is quoted (and cut): it comes from the program's memory and may hold any bytes.
  const shown = validName ? s.name : JSON.stringify(s.name.length > MAX_NAME ? s.name.slice(0, MAX_NAME) + "..." : s.name);
  const fail = (msg: string) => {
    throw new VerifierError(`map ${shown}: ${msg}`, where);
  };
  if (!validName) fail(`invalid name (letters, digits, '_' and '.', at most ${MAX_NAME})`);
  if (MAP_TYPE_NAMES[s.type] === undefined) fail(`unsupported map type ${s.type}`);
  if (![PIN_NONE, PIN_OBJECT_NS, PIN_GLOBAL_NS].includes(s.pinning)) fail(`invalid pinning ${s.pinning}`);
  if (!(s.maxEntries > 0) || s.maxEntries > 1 << 24) fail(`max_entries must be 1..${1 << 24} (got ${s.maxEntries})`);
  if (s.type === BPF_MAP_TYPE_RINGBUF) {
    // kernel: ringbuf_map_alloc: key and value sizes 0, max_entries a power of 2 and page-aligned.
    if (s.keySize !== 0 || s.valueSize !== 0) fail("ring buffer key and value sizes must be 0");
    if ((s.maxEntries & (s.maxEntries - 1)) !== 0 || s.maxEntries % PAGE !== 0) fail(`ring buffer size ${s.maxEntries} must be a power of 2 and a multiple of ${PAGE}`);
    return;
  }
  if (!(s.keySize > 0)) fail("key_size must be > 0");
  if (!(s.valueSize > 0)) fail("value_size must be > 0");
  if (s.keySize > 512) fail(`key_size ${s.keySize} > 512 (MAX_BPF_STACK)`);
  if (s.valueSize > 65536) fail(`value_size ${s.valueSize} too large`);
  if ((s.type === 2 || s.type === 6 || s.type === BPF_MAP_TYPE_PROG_ARRAY) && s.keySize !== 4) fail("array maps need a 4-byte (u32) key");
  if (s.type === BPF_MAP_TYPE_PROG_ARRAY && s.valueSize !== 4) fail("program arrays need a 4-byte value (a program id)");
  if (s.type === BPF_MAP_TYPE_LPM_TRIE) {
    // kernel: key = struct bpf_lpm_trie_key { __u32 prefixlen; __u8 data[]; }, data 1..LPM_DATA_SIZE_MAX.
    const data = s.keySize - 4;
    if (data < 1 || data > LPM_MAX_DATA) fail(`LPM trie key must be {prefixlen: u32, data: 1..${LPM_MAX_DATA} bytes} (key_size ${s.keySize})`);
  }
}
