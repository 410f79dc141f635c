// Python-side PNG decoder used by the report tests (see png_reader.h).
#include "png_reader.h"

#include <cstdio>
#include <sstream>

#include "test_util.h"

namespace llmopt::test {

namespace {

constexpr const char* kDecoder = R"PY(
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
if data[:8] != b'\x89PNG\r\n\x1a\n': sys.exit('bad signature')
pos, chunks = 8, []
while pos < len(data):
    n, = struct.unpack('>I', data[pos:pos + 4])
    typ, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
    crc, = struct.unpack('>I', data[pos + 8 + n:pos + 12 + n])
    if zlib.crc32(typ + body) & 0xffffffff != crc: sys.exit('bad CRC in chunk %r' % typ)
    chunks.append((typ, body))
    pos += 12 + n
if chunks[0][0] != b'IHDR' or chunks[-1][0] != b'IEND': sys.exit('bad chunk order')
w, h, depth, ctype, comp, filt, inter = struct.unpack('>IIBBBBB', chunks[0][1])
if (depth, ctype, comp, filt, inter) != (8, 2, 0, 0, 0): sys.exit('unexpected IHDR')
raw = zlib.decompress(b''.join(b for t, b in chunks if t == b'IDAT'))
stride = w * 3
if len(raw) != h * (stride + 1): sys.exit('IDAT size %d != %d' % (len(raw), h * (stride + 1)))
rows, prev = [], bytearray(stride)
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - 3] if i >= 3 else 0
        b = prev[i]
        c = prev[i - 3] if i >= 3 else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif f != 0: sys.exit('bad filter %d' % f)
    rows.append(line)
    prev = line
print(w, h)
args = sys.argv[2:]
if args[:1] == ['--dump']:
    open(args[1], 'wb').write(b''.join(bytes(r) for r in rows))
    args = []
for k in range(0, len(args), 2):
    x, y = int(args[k]), int(args[k + 1])
    print(*rows[y][3 * x:3 * x + 3])
)PY";

}  // namespace

std::string stdlib_python() {
  static const std::string cached = [] {
    std::string py = LLMOPT_NUMPY_PYTHON;
    if (py.empty()) py = "python3";
    return run_command(py + " -c 'import zlib, struct' 2>/dev/null").exit_code == 0 ? py : std::string();
  }();
  return cached;
}

DecodedPng decode_png_with_python(const std::string& png_path, const std::vector<std::pair<int, int>>& xy) {
  DecodedPng d;
  const std::string script = temp_dir() + "/decode_png.py";
  write_file(script, kDecoder);
  std::string cmd = stdlib_python() + " " + script + " '" + png_path + "'";
  for (auto [x, y] : xy) {
    cmd += ' ';
    cmd += std::to_string(x);
    cmd += ' ';
    cmd += std::to_string(y);
  }
  CmdResult r = run_command(cmd);
  if (r.exit_code != 0) {
    d.error = r.err;
    return d;
  }
  std::istringstream in(r.out);
  in >> d.width >> d.height;
  for (size_t i = 0; i < xy.size(); ++i) {
    std::vector<int> px(3);
    in >> px[0] >> px[1] >> px[2];
    d.rgb.push_back(px);
  }
  d.ok = static_cast<bool>(in);
  if (!d.ok) d.error = "could not parse: " + r.out;
  return d;
}

DecodedPng decode_png_pixels_with_python(const std::string& png_path) {
  DecodedPng d;
  const std::string script = temp_dir() + "/decode_png.py";
  const std::string dump = temp_dir() + "/decoded_pixels.rgb";
  write_file(script, kDecoder);
  std::remove(dump.c_str());
  CmdResult r = run_command(stdlib_python() + " " + script + " '" + png_path + "' --dump '" + dump + "'");
  if (r.exit_code != 0) {
    d.error = r.err;
    return d;
  }
  std::istringstream in(r.out);
  in >> d.width >> d.height;
  const std::string bytes = read_file(dump);
  d.pixels.assign(bytes.begin(), bytes.end());
  d.ok = static_cast<bool>(in);
  if (!d.ok) d.error = "could not parse: " + r.out;
  return d;
}

}  // namespace llmopt::test
