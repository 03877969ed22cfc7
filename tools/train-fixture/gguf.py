"""A minimal GGUF v3 writer (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).

write_gguf(path, metadata, tensors): metadata is a list of (key, value_type, value) with the
types below (ARRAY values are (element_type, list)); tensors is a list of (name, numpy array)
where float32 arrays are written as F32 and float16 arrays as F16. ggml lists dimensions
innermost first, so a torch weight of shape (out, in) is written with dims (in, out) and the
same row-major bytes.
"""
import struct

import numpy as np

UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR = {UINT8: '<B', INT8: '<b', UINT16: '<H', INT16: '<h', UINT32: '<I', INT32: '<i', FLOAT32: '<f',
           BOOL: '<?', UINT64: '<Q', INT64: '<q', FLOAT64: '<d'}
GGML_F32, GGML_F16 = 0, 1
ALIGNMENT = 32


def _string(s):
    b = s.encode('utf-8')
    return struct.pack('<Q', len(b)) + b


def _value(vtype, value):
    if vtype == STRING:
        return _string(value)
    if vtype == ARRAY:
        etype, items = value
        return struct.pack('<IQ', etype, len(items)) + b''.join(_value(etype, v) for v in items)
    return struct.pack(_SCALAR[vtype], value)


def _pad(n):
    return (ALIGNMENT - n % ALIGNMENT) % ALIGNMENT


def write_gguf(path, metadata, tensors):
    out = bytearray(b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(metadata)))
    for key, vtype, value in metadata:
        out += _string(key) + struct.pack('<I', vtype) + _value(vtype, value)
    blobs, offset = [], 0
    for name, array in tensors:
        array = np.ascontiguousarray(array)
        ggml_type = {np.dtype(np.float32): GGML_F32, np.dtype(np.float16): GGML_F16}[array.dtype]
        dims = list(reversed(array.shape))
        out += _string(name) + struct.pack('<I', len(dims)) + struct.pack(f'<{len(dims)}Q', *dims)
        out += struct.pack('<IQ', ggml_type, offset)
        blob = array.tobytes()
        blobs.append(blob + b'\0' * _pad(len(blob)))
        offset += len(blobs[-1])
    out += b'\0' * _pad(len(out))
    with open(path, 'wb') as f:
        f.write(out)
        for blob in blobs:
            f.write(blob)


def read_gguf(path):
    """Returns (metadata dict, {tensor name: numpy array in torch layout}) of a file write_gguf made."""
    data = open(path, 'rb').read()
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string():
        nonlocal pos
        n = take('<Q')
        pos += n
        return data[pos - n:pos].decode('utf-8')

    def value(vtype):
        if vtype == STRING:
            return string()
        if vtype == ARRAY:
            etype, n = take('<IQ')
            return [value(etype) for _ in range(n)]
        return take(_SCALAR[vtype])

    assert data[:4] == b'GGUF'
    pos = 4
    version, n_tensors, n_kv = take('<IQQ')
    assert version == 3
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take('<I'))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take('<Q') for _ in range(take('<I'))]
        ggml_type, offset = take('<IQ')
        infos.append((name, dims, ggml_type, offset))
    start = pos + _pad(pos)
    tensors = {}
    for name, dims, ggml_type, offset in infos:
        dtype = {GGML_F32: np.float32, GGML_F16: np.float16}[ggml_type]
        count = int(np.prod(dims))
        array = np.frombuffer(data, dtype=dtype, count=count, offset=start + offset)
        tensors[name] = array.reshape(list(reversed(dims))).astype(np.float32)
    return meta, tensors
