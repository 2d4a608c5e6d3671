// Byte layouts of the structs a guest passes to or shares with the hypervisor.
// Part of the public ABI (hypervisor/public/): imported by the hypervisor and by guest
// code alike. Every layout names its C struct so a test can compare it with Xen's headers.

/** One field: byte offset within the struct and size in bytes. */
export interface Field {
  readonly offset: number;
  readonly size: number;
}

/** A C struct's x86-64 layout as Xen's public headers define it. */
export interface StructLayout<F extends string = string> {
  /** The C type, as written in Xen's headers ("struct mmu_update", "vcpu_info_t"). */
  readonly cName: string;
  readonly size: number;
  /** Field paths as C's offsetof accepts them ("arch.cr2", "u.createdomain.max_vcpus"). */
  readonly fields: { readonly [K in F]: Field };
}

/** Declares a layout; fields are given as [offset, size] pairs. */
export function struct<F extends string>(
  cName: string,
  size: number,
  fields: { readonly [K in F]: readonly [number, number] },
): StructLayout<F> {
  const out = {} as { [K in F]: Field };
  for (const name of Object.keys(fields) as F[]) {
    const [offset, fsize] = fields[name];
    if (offset + fsize > size) throw new Error(`${cName}.${name} overruns the struct`);
    out[name] = Object.freeze({ offset, size: fsize });
  }
  return Object.freeze({ cName, size, fields: Object.freeze(out) });
}

/**
 * The fields of `inner` re-rooted at `prefix`, `base` bytes into an enclosing struct,
 * plus `prefix` itself as a whole field: for declaring layouts that embed another.
 */
export function nest<P extends string, F extends string>(
  prefix: P,
  base: number,
  inner: StructLayout<F>,
): { readonly [K in P | `${P}.${F}`]: readonly [number, number] } {
  const out: Record<string, readonly [number, number]> = { [prefix]: [base, inner.size] };
  for (const name of Object.keys(inner.fields) as F[]) {
    const field = inner.fields[name];
    out[`${prefix}.${name}`] = [base + field.offset, field.size];
  }
  return out as { readonly [K in P | `${P}.${F}`]: readonly [number, number] };
}
