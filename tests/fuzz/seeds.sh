#!/usr/bin/env bash
# Seed corpora for the fuzz targets, generated from ../shared samples (never copied into the
# repo: written under tests/fuzz/corpus/, which is git-ignored). Small seeds keep libFuzzer fast:
# large fixtures are cut down (a few tensors of the checkpoint, a few masks per set).
set -euo pipefail
cd "$(dirname "$0")"
shared="${CAMSAM_SHARED:-../../../shared}"
[ -d "$shared/fixtures" ] || { echo "seeds.sh: no fixtures at $shared (set CAMSAM_SHARED)" >&2; exit 1; }
for t in npy cam_dict npz_cam heatmap_png image_labels cam_to_label label_png masks weights sepl_merge dicom nifti; do
  mkdir -p "corpus/$t"
done
sepl="$shared/fixtures/sepl"
names=$(ls "$sepl/pseudo" | sed -n '1,6s/\.png$//p')
for n in $names; do
  cp "$sepl/pseudo/$n.png" corpus/heatmap_png/
  cp "$sepl/pseudo/$n.png" "corpus/label_png/pseudo_$n.png"
  cp "$sepl/gt/$n.png" "corpus/label_png/gt_$n.png"
done
cp "$(ls -rS "$shared"/data/voc_val_crops/images/* | sed -n 1p)" corpus/label_png/
cp "$shared/data/voc_val_crops/labels.tsv" corpus/image_labels/
printf 'a 1 15\nb: dog, cat\n' > corpus/image_labels/plain.txt
python3 - "$shared" $names <<'PY'
import io, json, os, random, struct, sys, zipfile
shared, names = sys.argv[1], sys.argv[2:]
rng = random.Random(7)

def npy(shape, fmt, descr, values):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join(f"{d}," for d in shape))
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    body = struct.pack("<%d%s" % (len(values), fmt), *values)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body

def put(target, name, data):
    with open(f"corpus/{target}/{name}", "wb") as f:
        f.write(data)

floats = [rng.random() * 4 - 1 for _ in range(2 * 5 * 7)]
put("npy", "f4.npy", npy((2, 5, 7), "f", "<f4", floats))
put("npy", "f8.npy", npy((2, 5, 7), "d", "<f8", floats))
put("npy", "u1.npy", npy((3, 4), "B", "|u1", list(range(12))))
put("npy", "i8.npy", npy((4,), "q", "<i8", [0, 14, 3, 7]))
# A real header from the SAM fixtures, its data cut short.
logits = os.path.join(shared, "fixtures/sam/predict/voc_a/point_single_low_res_logits.npy")
if os.path.exists(logits):
    put("npy", "logits_head.npy", open(logits, "rb").read()[:512])

def npz(members, method):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for key, data in members:
            z.writestr(key + ".npy", data)
    return out.getvalue()

keys = npy((2,), "q", "<i8", [0, 14])
cam = npy((2, 5, 7), "f", "<f4", floats)
for method, tag in [(zipfile.ZIP_STORED, "stored"), (zipfile.ZIP_DEFLATED, "deflated")]:
    put("npz_cam", f"high_res_{tag}.npz", npz([("keys", keys), ("high_res", cam)], method))
    put("npz_cam", f"cam_{tag}.npz", npz([("keys", keys), ("cam", cam)], method))

# np.save'd CAM dicts: the head of each code base's fixture (a whole one is megabytes), and a
# small complete one written as numpy 1.x does (protocol 2 GLOBALs, bytes via _codecs.encode).
formats = os.path.join(shared, "fixtures/cam_formats")
for fmt in ["irn", "amn", "lpcam", "psa", "clipes"]:
    first = sorted(os.listdir(os.path.join(formats, fmt)))[0]
    put("cam_dict", f"{fmt}_head.npy", open(os.path.join(formats, fmt, first), "rb").read()[:4096])

def p_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b

def p_bytes(b):  # protocol 2: _codecs.encode(str, 'latin1')
    return b"c_codecs\nencode\n" + p_str(b.decode("latin1")) + p_str("latin1") + b"\x86R"

def p_dtype(descr):
    return (b"cnumpy\ndtype\n" + p_str(descr) + b"\x89\x88\x87R"
            + b"(K\x03" + p_str("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")

def p_shape(shape):
    return b"(" + b"".join(b"K" + bytes([d]) for d in shape) + b"t"

def p_array(descr, shape, raw):
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + p_bytes(b"b")
            + b"\x87R(K\x01" + p_shape(shape) + p_dtype(descr) + b"\x89" + p_bytes(raw) + b"tb")

h, w = 5, 7
high_res = struct.pack(f"<{2 * h * w}f", *floats[:2 * h * w])
body = (b"}(" + p_str("keys") + p_array("i8", (2,), struct.pack("<2q", 0, 14))
        + p_str("high_res") + p_array("f4", (2, h, w), high_res) + b"u")
pickle2 = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + p_bytes(b"b")
           + b"\x87R(K\x01)" + p_dtype("O8") + b"\x89]" + body + b"atb.")
header = "{'descr': '|O', 'fortran_order': False, 'shape': (), }"
header += " " * (63 - (len(header) + 10) % 64) + "\n"
put("cam_dict", "numpy1_protocol2.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + pickle2)

put("cam_to_label", "random", bytes(rng.randrange(256) for _ in range(256)))
put("sepl_merge", "random", bytes(rng.randrange(256) for _ in range(600)))
# A merge input cut from a real pseudo-label: 6 header bytes then label rows, then masks.
put("sepl_merge", "blocks", bytes([15, 15, 4, 19, 128, 217]) +
    bytes(([0] * 5 + [15] * 5 + [1] * 6) * 16) + bytes(rng.choice([0, 1]) for _ in range(4 * 256)))

# Mask sets: zips of a few folders (stored and deflated), and one folder packed as the target's
# [name len][name][body len u16][body] records, with a metadata.csv.
sam = os.path.join(shared, "fixtures/sepl/sam")
for n, method in zip(names[:2], [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for f in sorted(os.listdir(os.path.join(sam, n)))[:3]:
            z.write(os.path.join(sam, n, f), f"{n}/{f}")
    put("masks", f"{n}.zip", out.getvalue())
records = b""
files = [(f, open(os.path.join(sam, names[0], f), "rb").read())
         for f in sorted(os.listdir(os.path.join(sam, names[0])))[:3]]
files.append(("metadata.csv", b"id,area,bbox_x0,bbox_y0,bbox_w,bbox_h,predicted_iou,stability_score\n"
              b"0,12,1,2,3,4,0.9,0.95\n1,5,0,0,1,1,0.8,0.99\n"))
for f, body in files:
    body = body[:65535]
    records += bytes([len(f)]) + f.encode() + struct.pack("<H", len(body)) + body
put("masks", "folder", records)

# Checkpoints: the fixture's tensors cut down to a few (the whole pickle is kept in the .pt).
weights = os.path.join(shared, "fixtures/sam/weights")
st = open(os.path.join(weights, "mobile_sam_random.safetensors"), "rb").read()
n = struct.unpack("<Q", st[:8])[0]
header = json.loads(st[8:8 + n])
data = st[8 + n:]
small, body = {}, b""
small_keys = [k for k in sorted(header) if k != "__metadata__"
              and header[k]["data_offsets"][1] - header[k]["data_offsets"][0] <= 4096]
for key in small_keys[:6]:
    s, e = header[key]["data_offsets"]
    small[key] = dict(header[key], data_offsets=[len(body), len(body) + e - s])
    body += data[s:e]
h = json.dumps(small).encode()
put("weights", "small.safetensors", struct.pack("<Q", len(h)) + h + body)
with zipfile.ZipFile(os.path.join(weights, "mobile_sam_random.pt")) as z, \
        zipfile.ZipFile("corpus/weights/small.pt", "w", zipfile.ZIP_STORED) as out:
    for info in z.infolist():
        blob = z.read(info)
        if "/data/" in info.filename:
            if not info.filename.endswith(("/data/0", "/data/1")):
                continue
        out.writestr(info.filename, blob)
PY
# Medical files: the small DICOMs whole (one per transfer syntax and colour model), a large one
# cut; NIfTI-1 cut down to a few voxels (plain and gzipped, 3-D and 4-D) and a NIfTI-2 built here.
medical="$shared/fixtures/medical/files"
for f in MR_small MR_small_RLE MR_small_bigendian MR_small_implicit SC_rgb_rle SC_rgb_jpeg_dcmtk \
         JPEG2000 image_dfl rtdose rtplan; do
  cp "$medical/$f.dcm" corpus/dicom/
done
head -c 4096 "$medical/CT_small.dcm" > corpus/dicom/CT_small_head.dcm
cp "$medical/standard.nii.gz" corpus/nifti/
python3 - "$medical" <<'PY'
import gzip, struct, sys
medical = sys.argv[1]

def shrink(raw, dims):
    """A NIfTI-1 file cut to `dims` voxels (its own header and byte order)."""
    e = "<" if struct.unpack_from("<i", raw)[0] == 348 else ">"
    hdr = bytearray(raw[:352])
    struct.pack_into(e + "8h", hdr, 40, len(dims), *dims, *([1] * (7 - len(dims))))
    bitpix = struct.unpack_from(e + "h", hdr, 72)[0]
    offset = int(struct.unpack_from(e + "f", hdr, 108)[0])
    n = 1
    for d in dims:
        n *= d
    struct.pack_into(e + "f", hdr, 108, 352.0)
    return bytes(hdr) + raw[offset:offset + n * bitpix // 8]

anat = open(f"{medical}/anatomical.nii", "rb").read()
open("corpus/nifti/anatomical_small.nii", "wb").write(shrink(anat, (4, 5, 3)))
fmri = gzip.decompress(open(f"{medical}/example4d.nii.gz", "rb").read())
open("corpus/nifti/example4d_small.nii.gz", "wb").write(gzip.compress(shrink(fmri, (3, 4, 2, 2))))
# NIfTI-2: 3×2×2 float32, slope 2, intercept 1.
h = bytearray(544)
struct.pack_into("<i8sh", h, 0, 540, b"n+2\0\r\n\x1a\n", 16)
struct.pack_into("<8q", h, 16, 3, 3, 2, 2, 1, 1, 1, 1)
struct.pack_into("<qdd", h, 168, 544, 2.0, 1.0)
open("corpus/nifti/small.nii", "wb").write(bytes(h) + struct.pack("<12f", *range(12)))
PY
echo "seeds.sh: corpora under $(pwd)/corpus" >&2
