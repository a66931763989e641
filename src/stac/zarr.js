// A small Zarr v3 reader for the map (written by `mosaic stac` to map/zarr.js; docs/stac.md):
// enough of the spec to read a tessera-mosaic store over HTTP from a static host or bucket,
// with no server code. Regular chunk grids, the default chunk key encoding, data types int8,
// int32, float32, float64; codecs transpose, bytes, zstd (decoded by the vendored fzstd) and
// sharding_indexed (index at the end, its crc32c checked), whose index and inner chunks are
// read with HTTP range requests (a server that ignores Range answers 200 with the whole
// object, which is then sliced). A chunk or shard that does not exist (404/403) reads as the
// fill value. Hand-written rather than zarrita: zarrita is ESM spread over several packages
// (and numcodecs' zstd is a wasm build), which would need a bundler to travel inside `mosaic`
// as one static file; this file and fzstd (8 kB) do.
"use strict";
(function () {
  const TYPES = {
    int8: [Int8Array, 1], uint8: [Uint8Array, 1], int16: [Int16Array, 2],
    int32: [Int32Array, 4], uint32: [Uint32Array, 4], float32: [Float32Array, 4],
    float64: [Float64Array, 8],
  };

  // CRC-32C (Castagnoli), as the sharding index codec appends it.
  const CRC_TABLE = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    return t;
  })();
  function crc32c(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  // Every request counted, for the page's status line and for measurements.
  const stats = { requests: 0, bytes: 0 };

  // GET a whole object, or `range` = [start, end) or [-n] (the last n bytes). Resolves to
  // null when the object does not exist.
  const whole = new Map(); // url -> Promise<Uint8Array|null>, for servers that ignore Range
  async function get(url, range) {
    if (whole.has(url)) return slice(await whole.get(url), range);
    const headers = {};
    if (range) {
      headers.Range = range.length === 1 ? `bytes=-${range[0]}` : `bytes=${range[0]}-${range[1] - 1}`;
    }
    const response = await fetch(url, { headers });
    if (response.status === 404 || response.status === 403) return null;
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    stats.requests++;
    stats.bytes += bytes.length;
    if (range && response.status !== 206) {
      whole.set(url, Promise.resolve(bytes));
      if (whole.size > 8) whole.delete(whole.keys().next().value);
      return slice(bytes, range);
    }
    return bytes;
  }
  function slice(bytes, range) {
    if (!bytes || !range) return bytes;
    if (range.length === 1) return bytes.subarray(Math.max(0, bytes.length - range[0]));
    return bytes.subarray(range[0], range[1]);
  }

  function product(a) { return a.reduce((x, y) => x * y, 1); }

  // Undo a transpose codec: `stored` holds the chunk with its axes in `order`.
  function untranspose(stored, shape, order, T) {
    const n = shape.length, out = new T(stored.length);
    const storedShape = order.map((a) => shape[a]);
    const storedStrides = new Array(n);
    let s = 1;
    for (let i = n - 1; i >= 0; i--) { storedStrides[i] = s; s *= storedShape[i]; }
    // stride in the stored layout of each original axis
    const strideOf = new Array(n);
    order.forEach((axis, i) => { strideOf[axis] = storedStrides[i]; });
    const last = n - 1, inner = shape[last], innerStride = strideOf[last];
    const idx = new Array(n).fill(0);
    for (let o = 0; o < out.length; o += inner) {
      let base = 0;
      for (let d = 0; d < last; d++) base += idx[d] * strideOf[d];
      for (let k = 0; k < inner; k++) out[o + k] = stored[base + k * innerStride];
      for (let d = last - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
    return out;
  }

  // Decode `bytes` through an array -> bytes codec chain into a typed array of `shape`.
  function decode(bytes, codecs, shape, dtype) {
    const [T, size] = TYPES[dtype];
    let order = null;
    for (let i = codecs.length - 1; i >= 0; i--) {
      const c = codecs[i], conf = c.configuration || {};
      if (c.name === "zstd") bytes = fzstd.decompress(bytes);
      else if (c.name === "bytes") {
        if (size > 1 && conf.endian === "big") throw new Error("big-endian data is not supported");
      } else if (c.name === "transpose") order = conf.order;
      else if (c.name === "crc32c") bytes = bytes.subarray(0, bytes.length - 4);
      else throw new Error(`codec ${c.name} is not supported`);
    }
    const n = product(shape);
    if (bytes.length !== n * size) throw new Error(`chunk of ${bytes.length} bytes, expected ${n * size}`);
    const copy = new Uint8Array(n * size);
    copy.set(bytes);
    const values = new T(copy.buffer);
    return order && order.some((a, i) => a !== i) ? untranspose(values, shape, order, T) : values;
  }

  function fillValue(meta) {
    const f = meta.fill_value;
    if (f === "NaN") return NaN;
    if (f === "Infinity") return Infinity;
    if (f === "-Infinity") return -Infinity;
    return f;
  }

  // One array: `url` its folder (ending in /), `meta` its zarr.json.
  class ZArray {
    constructor(url, meta) {
      this.url = url;
      this.meta = meta;
      this.shape = meta.shape;
      this.dtype = meta.data_type;
      if (!TYPES[this.dtype]) throw new Error(`${url}: data type ${this.dtype} is not supported`);
      if (meta.chunk_grid.name !== "regular") throw new Error(`${url}: chunk grid ${meta.chunk_grid.name}`);
      this.chunks = meta.chunk_grid.configuration.chunk_shape;
      const enc = meta.chunk_key_encoding;
      this.sep = (enc.configuration && enc.configuration.separator) || "/";
      this.prefix = enc.name === "default" ? "c" + this.sep : "";
      if (enc.name === "v2") this.sep = (enc.configuration && enc.configuration.separator) || ".";
      const shard = meta.codecs.find((c) => c.name === "sharding_indexed");
      this.shard = shard ? shard.configuration : null;
      if (this.shard && (this.shard.index_location || "end") !== "end") {
        throw new Error(`${url}: shard index at the start is not supported`);
      }
      this.indexes = new Map(); // shard key -> Promise<BigUint64Array|null>
    }
    key(coords) {
      return this.url + (this.prefix + coords.join(this.sep) || "0");
    }
    // The chunk (or the inner chunk of a shard) with grid coordinates `coords` in units of the
    // read unit: the chunk shape, or the inner chunk shape of a sharded array. Resolves to
    // {shape, values} with the values in C order; missing chunks hold the fill value.
    readShape() { return this.shard ? this.shard.chunk_shape : this.chunks; }
    async read(coords) {
      const shape = this.readShape();
      if (!this.shard) {
        const bytes = await get(this.key(coords));
        return bytes ? decode(bytes, this.meta.codecs, shape, this.dtype) : this.fill(shape);
      }
      const inner = this.shard.chunk_shape;
      const per = this.chunks.map((c, i) => c / inner[i]);
      const shardCoords = coords.map((c, i) => Math.floor(c / per[i]));
      const url = this.key(shardCoords);
      const index = await this.index(url, product(per));
      if (!index) return this.fill(shape);
      let k = 0;
      for (let i = 0; i < coords.length; i++) k = k * per[i] + (coords[i] % per[i]);
      const offset = index[2 * k], nbytes = index[2 * k + 1];
      if (offset === 0xffffffffffffffffn && nbytes === 0xffffffffffffffffn) return this.fill(shape);
      const bytes = await get(url, [Number(offset), Number(offset + nbytes)]);
      if (!bytes) throw new Error(`${url}: shard vanished`);
      return decode(bytes, this.shard.codecs, shape, this.dtype);
    }
    index(url, n) {
      if (!this.indexes.has(url)) {
        if (this.indexes.size > 256) this.indexes.delete(this.indexes.keys().next().value);
        const withCrc = this.shard.index_codecs.some((c) => c.name === "crc32c");
        const size = n * 16 + (withCrc ? 4 : 0);
        this.indexes.set(url, get(url, [size]).then((bytes) => {
          if (!bytes) return null;
          if (bytes.length !== size) throw new Error(`${url}: shard index of ${bytes.length} bytes, expected ${size}`);
          if (withCrc) {
            const want = new DataView(bytes.buffer, bytes.byteOffset + n * 16, 4).getUint32(0, true);
            if (crc32c(bytes.subarray(0, n * 16)) !== want) throw new Error(`${url}: shard index checksum mismatch`);
          }
          const copy = new Uint8Array(n * 16);
          copy.set(bytes.subarray(0, n * 16));
          return new BigUint64Array(copy.buffer);
        }));
      }
      return this.indexes.get(url);
    }
    fill(shape) {
      const [T] = TYPES[this.dtype];
      const out = new T(product(shape));
      const f = fillValue(this.meta);
      if (f) out.fill(f);
      return out;
    }
  }

  // A group read through its consolidated metadata: `url` the group's folder (ending in /).
  async function openGroup(url) {
    const bytes = await get(url + "zarr.json");
    if (!bytes) throw new Error(`${url}zarr.json: not found`);
    const meta = JSON.parse(new TextDecoder().decode(bytes));
    const all = (meta.consolidated_metadata && meta.consolidated_metadata.metadata) || {};
    return {
      url,
      attributes: meta.attributes || {},
      paths: Object.keys(all),
      has(path) { return path in all; },
      array(path) {
        const m = all[path];
        if (!m || m.node_type !== "array") throw new Error(`${url}${path}: no such array in the consolidated metadata`);
        return new ZArray(`${url}${path}/`, m);
      },
    };
  }

  window.mosaicZarr = { openGroup, ZArray, decode, crc32c, stats };
})();
