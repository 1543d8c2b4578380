// Map contents as JSON, to seed maps before a run (`--maps FILE.json`) and to save them (`tcbox map --save`):
//   { "MAP_NAME": [ { "key": { field: value, ... }, "value": { field: value, ... } }, ... ] }
// Fields are those of the program's declared structs (its @unmanaged classes, recorded by tcbox build like
// BTF); a primitive key or value may be given bare (`"key": 3`); any key or value may instead be a string of
// hex bytes as bpftool prints them ("0a 00 00 01"). Addresses (ipv4 fields) are dotted quads; be16/be32 fields
// are plain numbers (tcbox puts them in network order).
import { AddrError } from "../packet/addr.js";
import { BpfError } from "./errors.js";
import type { BpfObject } from "./kernel.js";
import type { BpfMap } from "./maps/map.js";
import { decodeStruct, encodeStruct, hexBytes, parseHexBytes, StructError, type FieldValue, type StructValue } from "./maps/struct.js";
import type { StructLayout } from "./btf.js";

export type SeedValue = StructValue | FieldValue;
export interface SeedEntry {
  key: SeedValue;
  value: SeedValue;
}
export type MapSeed = Record<string, SeedEntry[]>;

function encode(layout: StructLayout | undefined, v: SeedValue, size: number, what: string): Uint8Array {
  if (typeof v === "string" && /^\s*(0x)?[0-9a-f]{2}(\s+(0x)?[0-9a-f]{2})*\s*$/i.test(v) && v.trim().split(/\s+/).length === size && size > 1) {
    return parseHexBytes(v, size, what);
  }
  if (!layout) throw new StructError(`${what}: the map has no struct layout; give hex bytes ("0a 00 00 01")`);
  const out = new Uint8Array(size);
  encodeStruct(layout, v, out, what);
  return out;
}

/** Apply a seed to an object's maps; errors name the file, the map and the entry. */
export function applySeed(obj: BpfObject, seed: unknown, file: string): number {
  if (typeof seed !== "object" || seed === null || Array.isArray(seed)) throw new BpfError('want an object { "MAP_NAME": [ { "key": ..., "value": ... } ] }', file);
  let n = 0;
  for (const [name, entries] of Object.entries(seed as Record<string, unknown>)) {
    const map = obj.maps.get(name);
    if (!map) throw new BpfError(`no map "${name}" in ${obj.name} (maps: ${[...obj.maps.keys()].join(", ") || "none"})`, file);
    if (!Array.isArray(entries)) throw new BpfError(`${name}: want a list of { "key": ..., "value": ... }`, file);
    entries.forEach((e: unknown, i) => {
      const where = `${file}: ${name}[${i}]`;
      if (typeof e !== "object" || e === null || !("key" in e) || !("value" in e)) throw new BpfError('want { "key": ..., "value": ... }', where);
      const { key, value } = e as SeedEntry;
      try {
        map.update(encode(map.keyLayout, key, map.spec.keySize, "key"), encode(map.valueLayout, value, map.spec.valueSize, "value"));
      } catch (err) {
        // The entry's own faults (a field that does not encode, an address that does not parse, the map refusing
        // the element); anything else is a bug and keeps its stack.
        if (err instanceof StructError || err instanceof AddrError || err instanceof BpfError) throw new BpfError(err.message, where);
        throw err;
      }
      n++;
    });
  }
  return n;
}

/** The map's contents in seed form (typed when the layouts are known, hex otherwise). */
export function dumpSeed(map: BpfMap): SeedEntry[] {
  const out: SeedEntry[] = [];
  for (const [k, v] of map.entries()) {
    const value = v.subarray(0, map.spec.valueSize);
    out.push({
      key: map.keyLayout ? unwrap(decodeStruct(map.keyLayout, k)) : hexBytes(k),
      value: map.valueLayout ? unwrap(decodeStruct(map.valueLayout, value)) : hexBytes(value),
    });
  }
  return out;
}

/** A primitive layout decodes to { value: x }: show it bare. */
function unwrap(s: StructValue): SeedValue {
  const keys = Object.keys(s);
  return keys.length === 1 && keys[0] === "value" ? s.value! : s;
}
