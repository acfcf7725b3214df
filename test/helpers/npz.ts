/**
 * A tiny .npz writer for tests (the layout np.savez produces): .npy v1.0 members in a zip archive,
 * stored or deflated, optionally with every zip64 field numpy and Python's zipfile can write.
 */
import { crc32, deflateRawSync } from 'node:zlib';

/** One array to write: a NumPy shape and values, stored with `dtype`. */
export interface NpyInput {
  shape: number[];
  data: ArrayLike<number>;
  /** Default '<f4'. */
  dtype?: '<f4' | '<f8' | '<f2' | '<i4';
  fortranOrder?: boolean;
}

export interface WriteNpzOptions {
  method?: 'stored' | 'deflate';
  /** Write sizes and offsets through zip64 extra fields and a zip64 end record, as numpy's force_zip64 does. */
  zip64?: boolean;
}

/** Bytes of an .npy v1.0 file: magic, version, header dict padded to 64 bytes, then the data. */
export function npyBytes(a: NpyInput): Buffer {
  const dtype = a.dtype ?? '<f4';
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(', ')})`;
  let header = `{'descr': '${dtype}', 'fortran_order': ${a.fortranOrder ? 'True' : 'False'}, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const size = { '<f4': 4, '<f8': 8, '<f2': 2, '<i4': 4 }[dtype];
  const data = Buffer.alloc(a.data.length * size);
  for (let i = 0; i < a.data.length; i++) {
    const v = a.data[i]!;
    if (dtype === '<f4') data.writeFloatLE(v, i * 4);
    else if (dtype === '<f8') data.writeDoubleLE(v, i * 8);
    else if (dtype === '<i4') data.writeInt32LE(v, i * 4);
    else data.writeUInt16LE(exactF16Bits(v), i * 2);
  }
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data]);
}

/** A zip archive of the given members (name → bytes). */
export function zipBytes(members: [string, Buffer][], options: WriteNpzOptions = {}): Buffer {
  const deflate = options.method === 'deflate';
  const z64 = options.zip64 === true;
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, plain] of members) {
    const nameBytes = Buffer.from(name, 'utf8');
    const data = deflate ? deflateRawSync(plain) : plain;
    const crc = crc32(plain) >>> 0;
    const sizes64 = Buffer.alloc(20);
    sizes64.writeUInt16LE(1, 0);
    sizes64.writeUInt16LE(16, 2);
    sizes64.writeBigUInt64LE(BigInt(plain.length), 4);
    sizes64.writeBigUInt64LE(BigInt(data.length), 12);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(z64 ? 45 : 20, 4);
    local.writeUInt16LE(deflate ? 8 : 0, 8);
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(z64 ? 0xffffffff : data.length, 18);
    local.writeUInt32LE(z64 ? 0xffffffff : plain.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(z64 ? sizes64.length : 0, 28);
    const localRecord = Buffer.concat([local, nameBytes, z64 ? sizes64 : Buffer.alloc(0)]);

    const extra = Buffer.alloc(28); // uncompressed, compressed, local header offset
    extra.writeUInt16LE(1, 0);
    extra.writeUInt16LE(24, 2);
    extra.writeBigUInt64LE(BigInt(plain.length), 4);
    extra.writeBigUInt64LE(BigInt(data.length), 12);
    extra.writeBigUInt64LE(BigInt(offset), 20);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(z64 ? 45 : 20, 4);
    central.writeUInt16LE(z64 ? 45 : 20, 6);
    central.writeUInt16LE(deflate ? 8 : 0, 10);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(z64 ? 0xffffffff : data.length, 20);
    central.writeUInt32LE(z64 ? 0xffffffff : plain.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt16LE(z64 ? extra.length : 0, 30);
    central.writeUInt32LE(z64 ? 0xffffffff : offset, 42);
    centrals.push(Buffer.concat([central, nameBytes, z64 ? extra : Buffer.alloc(0)]));
    locals.push(localRecord, data);
    offset += localRecord.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const tail: Buffer[] = [];
  if (z64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(members.length), 24);
    rec.writeBigUInt64LE(BigInt(members.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40);
    rec.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    locator.writeUInt32LE(1, 16);
    tail.push(rec, locator);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(z64 ? 0xffff : members.length, 8);
  eocd.writeUInt16LE(z64 ? 0xffff : members.length, 10);
  eocd.writeUInt32LE(z64 ? 0xffffffff : cd.length, 12);
  eocd.writeUInt32LE(z64 ? 0xffffffff : offset, 16);
  return Buffer.concat([...locals, cd, ...tail, eocd]);
}

/** An .npz of the given arrays (name without `.npy` → array). */
export function npzBytes(arrays: Map<string, NpyInput> | Record<string, NpyInput>, options: WriteNpzOptions = {}): Buffer {
  const entries = arrays instanceof Map ? [...arrays] : Object.entries(arrays);
  return zipBytes(entries.map(([name, a]) => [`${name}.npy`, npyBytes(a)]), options);
}

/** F16 bits of a value that F16 represents exactly (normal range); anything else is a test bug. */
export function exactF16Bits(v: number): number {
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const e = Math.floor(Math.log2(a));
  const mant = a / 2 ** e - 1;
  const m = mant * 1024;
  if (e < -14 || e > 15 || !Number.isInteger(m)) throw new Error(`${v} is not an exact normal F16 value`);
  return sign | ((e + 15) << 10) | m;
}
