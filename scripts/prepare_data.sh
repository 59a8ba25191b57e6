#!/usr/bin/env bash
# Assembles Fashion-MNIST for `waypoint bench`, `train-pruner` and `train-hash` under
# build/data/fashion-mnist (or $WAYPOINT_BUILD_DIR/data), from the Debian package
# dataset-fashion-mnist alone:
#   base.fvecs          60,000 x 784 float32, the train images (raw pixels 0..255), file order
#   query_all.fvecs     10,000 x 784, the test images; query.fvecs = the first 1,000 of them
#   base_labels.ivecs, query_labels.ivecs   the class (0..9) of each row
#   groundtruth.ivecs   exact top-100 base rows of each query, by `waypoint gt` (FAISS flat, L2)
# The vectors are checked against their sha256 (the same files ann-benchmarks'
# fashion-mnist-784-euclidean holds). Needs python3 (numpy when importable: seconds; without it
# about a minute) and a built `waypoint` (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${WAYPOINT_BUILD_DIR:-build}
src=${FMNIST_SRC:-/usr/share/datasets/fashion-mnist}
out=$build/data/fashion-mnist
for f in train-images-idx3-ubyte.gz t10k-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz \
         t10k-labels-idx1-ubyte.gz; do
  [[ -r $src/$f ]] || { echo "prepare_data: missing $src/$f (apt-get install dataset-fashion-mnist)" >&2; exit 1; }
done
[[ -x $build/waypoint ]] || { echo "prepare_data: build waypoint first (bash scripts/build.sh)" >&2; exit 1; }
mkdir -p "$out"

if [[ ! -s $out/groundtruth.ivecs ]]; then
  python3 - "$src" "$out" <<'EOF'
import gzip, os, struct, sys
src, out = sys.argv[1], sys.argv[2]

def idx(path, magic_want):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n = struct.unpack(">II", raw[:8])
    if magic != magic_want:
        raise SystemExit("%s: not an IDX file of the expected kind" % path)
    dims = struct.unpack(">" + "I" * (magic & 0xff), raw[4:4 + 4 * (magic & 0xff)])
    return raw[4 + 4 * len(dims):], dims

def write_records(path, rows, d, values_bytes, kind):
    """TEXMEX records: int32 d, then d float32 (kind 'f') or int32 (kind 'i') values."""
    tmp = path + ".tmp"
    try:
        import numpy as np
        a = np.frombuffer(values_bytes, dtype=np.uint8).reshape(rows, d)
        a = a.astype("<f4").view("<i4") if kind == "f" else a.astype("<i4")
        rec = np.empty((rows, d + 1), dtype="<i4")
        rec[:, 0] = d
        rec[:, 1:] = a
        rec.tofile(tmp)
    except ImportError:
        from array import array
        head = struct.pack("<i", d)
        with open(tmp, "wb") as f:
            for i in range(rows):
                row = array("f" if kind == "f" else "i", list(values_bytes[i * d:(i + 1) * d]))
                if sys.byteorder != "little":
                    row.byteswap()
                f.write(head + row.tobytes())
    os.replace(tmp, path)

for stem, images, labels, n in (("base", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
                                ("query_all", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000)):
    px, dims = idx(os.path.join(src, images), 0x803)
    lab, ldims = idx(os.path.join(src, labels), 0x801)
    if dims != (n, 28, 28) or ldims != (n,):
        raise SystemExit("%s: unexpected shape %s" % (images, dims))
    write_records(os.path.join(out, stem + ".fvecs"), n, 784, px, "f")
    label_file = "base_labels.ivecs" if stem == "base" else "query_all_labels.ivecs"
    write_records(os.path.join(out, label_file), n, 1, lab, "i")
    if stem == "query_all":  # the 1,000 evaluation queries, as ann-benchmarks takes them
        write_records(os.path.join(out, "query.fvecs"), 1000, 784, px[:1000 * 784], "f")
        write_records(os.path.join(out, "query_labels.ivecs"), 1000, 1, lab[:1000], "i")
EOF
  (cd "$out" && sha256sum -c --quiet <<'EOF'
4a9d44cb151889a072e0ca6f384a3d7cc75ee776dd99cb1c82ff2c5384144af1  base.fvecs
cee0af42f0e48aeae05ad2412993409bd16b6c46e5da62b4420223087487dff3  query_all.fvecs
1d7c17480ac6b0094393fd6754c7a4e1971625cd4abbc51142a09ef59fb71dac  query.fvecs
EOF
  )
  "$build/waypoint" gt --base "$out/base.fvecs" --query "$out/query.fvecs" --k 100 --metric l2 \
    --out "$out/groundtruth.ivecs"
fi
echo "prepare_data: $out ready"
