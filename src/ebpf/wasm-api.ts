// The WebAssembly JS API, typed: the project's lib settings (ES2022 + node types) do not declare it.
export interface WasmMemory {
  /** An ArrayBuffer, or a SharedArrayBuffer for a shared memory. */
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
export interface WasmModule {
  readonly __brand?: "WasmModule";
}
export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
export interface WasmImportDesc {
  module: string;
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
}
export interface WasmExportDesc {
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
}
export interface WasmGlobal {
  value: number;
}

interface WasmNamespace {
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Module: {
    new (bytes: Uint8Array): WasmModule;
    imports(m: WasmModule): WasmImportDesc[];
    exports(m: WasmModule): WasmExportDesc[];
    customSections(m: WasmModule, name: string): ArrayBuffer[];
  };
  Instance: new (m: WasmModule, imports: Record<string, Record<string, unknown>>) => WasmInstance;
  RuntimeError: new (...args: unknown[]) => Error;
  CompileError: new (...args: unknown[]) => Error;
  LinkError: new (...args: unknown[]) => Error;
}

export const Wasm = (globalThis as unknown as { WebAssembly: WasmNamespace }).WebAssembly;
