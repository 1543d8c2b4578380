// A module's sections, for tests that corrupt one part of a built program and keep the rest valid.

export interface Section {
  id: number;
  body: Uint8Array;
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

export function sections(wasm: Uint8Array): Section[] {
  const out: Section[] = [];
  let p = 8;
  while (p < wasm.length) {
    const id = wasm[p++]!;
    let size = 0;
    for (let shift = 0; ; shift += 7) {
      const b = wasm[p++]!;
      size += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
    }
    out.push({ id, body: wasm.subarray(p, p + size) });
    p += size;
  }
  return out;
}

export function assemble(list: Section[]): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0)];
  for (const s of list) parts.push(Uint8Array.from([s.id, ...uleb(s.body.length)]), s.body);
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

/** The JSON text of the custom section `name` (a custom section's body: name length, name, contents). */
export function customText(wasm: Uint8Array, name: string): string | undefined {
  for (const s of sections(wasm)) {
    if (s.id !== 0) continue;
    const n = s.body[0]!; // names here are shorter than 128 bytes: a one-byte length
    if (new TextDecoder().decode(s.body.subarray(1, 1 + n)) === name) return new TextDecoder().decode(s.body.subarray(1 + n));
  }
  return undefined;
}

/** `wasm` with the custom section `name` holding `text` instead. */
export function withCustomText(wasm: Uint8Array, name: string, text: string): Uint8Array {
  const enc = new TextEncoder();
  return assemble(
    sections(wasm).map((s) => {
      if (s.id !== 0 || new TextDecoder().decode(s.body.subarray(1, 1 + s.body[0]!)) !== name) return s;
      return { id: 0, body: Uint8Array.from([...uleb(name.length), ...enc.encode(name), ...enc.encode(text)]) };
    }),
  );
}
