// NpyReader / write_npy_f32 on small files in a temp directory, well-formed
// and malformed.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "moesim/error.hpp"
#include "moesim/trace_io.hpp"

namespace moesim {
namespace {

namespace fs = std::filesystem;

fs::path npy_dir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("moesim_npy_test_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

// An NPY file with a given version and header text (padded with spaces and
// '\n' to a multiple of 64) followed by `data_bytes` bytes.
std::string raw_npy(const std::string& name, const std::string& header_text, std::size_t data_bytes,
                    int major = 1, int minor = 0, const std::string& magic = "\x93NUMPY") {
  const std::string path = (npy_dir() / name).string();
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string header = header_text;
  const std::size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << magic;
  out.put(char(major));
  out.put(char(minor));
  for (std::size_t b = 0; b < prefix - 8; ++b) out.put(char((header.size() >> (8 * b)) & 0xff));
  out << header << std::string(data_bytes, '\0');
  return path;
}

std::string header_of(const std::string& descr, const std::string& order, const std::string& shape) {
  return "{'descr': " + descr + ", 'fortran_order': " + order + ", 'shape': " + shape + ", }";
}

// The message of the InputError open() throws ("" if none).
std::string open_error(const std::string& path) {
  try {
    NpyReader::open(path);
  } catch (const InputError& e) {
    CHECK(e.file() == path);
    CHECK(e.where().empty());
    return e.message();
  }
  return "";
}

std::vector<float> ramp(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = float(i) * 0.5f - 1.0f;
  return v;
}

}  // namespace

TEST_CASE("NPY round trip, version 1.0 and 2.0, read lazily by rows", "[trace][npy]") {
  const std::vector<float> data = ramp(15);  // 5×3
  for (int version : {1, 2}) {
    const std::string path = (npy_dir() / ("ok" + std::to_string(version) + ".npy")).string();
    write_npy_f32(path, 5, 3, data, version);
    CHECK(fs::file_size(path) == 128 + 60);  // data starts at a 64-byte boundary
    NpyReader r = NpyReader::open(path);
    CHECK(r.rows() == 5);
    CHECK(r.cols() == 3);
    std::vector<float> rows(6, 99.f);
    r.read_rows(1, 2, rows.data());
    CHECK(rows == std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f});
    std::vector<float> all(15);
    r.read_rows(0, 5, all.data());
    CHECK(all == data);
    r.read_rows(4, 1, rows.data());  // random access after a full read
    CHECK(rows[0] == 5.0f);
    r.read_rows(5, 0, rows.data());
    CHECK_THROWS_AS(r.read_rows(4, 2, rows.data()), std::out_of_range);
    CHECK_THROWS_AS(r.read_rows(-1, 1, rows.data()), std::out_of_range);
  }
}

TEST_CASE("NPY writer produces numpy's version 1.0 header byte for byte", "[trace][npy]") {
  const std::string path = (npy_dir() / "bytes.npy").string();
  write_npy_f32(path, 5, 3, ramp(15));
  std::ifstream in(path, std::ios::binary);
  std::string head(128, '\0');
  in.read(head.data(), 128);
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), }";
  CHECK(head.substr(0, 10) == std::string("\x93NUMPY\x01\x00\x76\x00", 10));  // header length 118
  CHECK(head.substr(10, dict.size()) == dict);
  CHECK(head.back() == '\n');
  CHECK(head.find_first_not_of(' ', 10 + dict.size()) == 127);
}

TEST_CASE("NPY reader accepts the header variants numpy has written", "[trace][npy]") {
  // Double quotes, no trailing comma, Python 2 long literals, empty array.
  NpyReader a = NpyReader::open(raw_npy(
      "variant1.npy", "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L, 3L)}", 24));
  CHECK(a.rows() == 2);
  CHECK(a.cols() == 3);
  NpyReader b = NpyReader::open(raw_npy("variant2.npy", header_of("'<f4'", "False", "(0, 4)"), 0));
  CHECK(b.rows() == 0);
  CHECK(b.cols() == 4);
}

TEST_CASE("NPY reader names every malformed header precisely", "[trace][npy]") {
  const std::string ok = header_of("'<f4'", "False", "(5, 3)");
  CHECK(open_error(raw_npy("f8.npy", header_of("'<f8'", "False", "(5, 3)"), 120)) ==
        "expected dtype '<f4' (float32 logits) or '<i2', '<i4', '<i8' (integer expert ids), little-endian, got "
        "'<f8'; convert with array.astype('<f4') or array.astype('<i4')");
  CHECK(open_error(raw_npy("be.npy", header_of("'>f4'", "False", "(5, 3)"), 60)) ==
        "expected dtype '<f4' (float32 logits) or '<i2', '<i4', '<i8' (integer expert ids), little-endian, got "
        "'>f4'; convert with array.astype('<f4') or array.astype('<i4')");
  CHECK(open_error(raw_npy("fortran.npy", header_of("'<f4'", "True", "(5, 3)"), 60)) ==
        "expected fortran_order False (C order), got True; save numpy.ascontiguousarray(array)");
  CHECK(open_error(raw_npy("1d.npy", header_of("'<f4'", "False", "(5,)"), 20)) ==
        "expected a 2-D shape (tokens, experts or k) or a 3-D shape (tokens, layers, experts or k), got (5,)");
  CHECK(open_error(raw_npy("4d.npy", header_of("'<f4'", "False", "(2, 2, 2, 2)"), 64)) ==
        "expected a 2-D shape (tokens, experts or k) or a 3-D shape (tokens, layers, experts or k), got (2, 2, 2, 2)");
  CHECK(open_error(raw_npy("0col.npy", header_of("'<f4'", "False", "(5, 0)"), 0)) ==
        "expected every dimension after the first to be at least 1, got shape (5, 0)");
  // A header's dimensions are bounded before any reader narrows them to int (layers, experts, k).
  CHECK(open_error(raw_npy("wide.npy", header_of("'<i4'", "False", "(1, 3000000000, 2)"), 0)) ==
        "expected every dimension after the first (layers, experts or k) to be at most 1048576, got shape "
        "(1, 3000000000, 2)");
  CHECK(open_error(raw_npy("v3.npy", ok, 60, 3, 0)) ==
        "unsupported NPY format version 3.0: expected 1.0 or 2.0");
  CHECK(open_error(raw_npy("v11.npy", ok, 60, 1, 1)) ==
        "unsupported NPY format version 1.1: expected 1.0 or 2.0");
  CHECK(open_error(raw_npy("magic.npy", ok, 60, 1, 0, "\x93NUMPZ")) ==
        "not an NPY file: expected the magic string \\x93NUMPY; expected an array saved "
        "with numpy.save");
  CHECK(open_error(raw_npy("nokey.npy", "{'descr': '<f4', 'shape': (5, 3), }", 60)) ==
        "NPY header lacks 'fortran_order': expected keys 'descr', 'fortran_order', 'shape'");
  CHECK(open_error(raw_npy("extrakey.npy",
                           "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), 'x': 1}", 60))
            .find("malformed NPY header (unsupported value at offset") == 0);
  CHECK(open_error(raw_npy("unknown.npy",
                           "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), 'x': 'y'}", 60)) ==
        "unknown NPY header key 'x': expected only 'descr', 'fortran_order', 'shape'");
  CHECK(open_error(raw_npy("dup.npy", "{'descr': '<f4', 'descr': '<f4'}", 60))
            .find("malformed NPY header (key 'descr' appears twice)") == 0);
  CHECK(open_error(raw_npy("unterminated.npy", "{'descr': '<f4', 'fortran_order': False", 60))
            .find("malformed NPY header (expected ',' at offset") == 0);
}

TEST_CASE("NPY reader checks the file size against the shape", "[trace][npy]") {
  const std::string ok = header_of("'<f4'", "False", "(5, 3)");
  CHECK(open_error(raw_npy("short.npy", ok, 56)) ==
        "expected 60 bytes of float32 data for shape (5, 3) after the 128-byte header, found 56");
  CHECK(open_error(raw_npy("long.npy", ok, 64)) ==
        "expected 60 bytes of float32 data for shape (5, 3) after the 128-byte header, found 64");
  // A header length pointing past the end of the file.
  const std::string path = (npy_dir() / "cut.npy").string();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << std::string("\x93NUMPY\x01\x00\x76\x00{'descr'", 18);
  }
  CHECK(open_error(path) == "NPY header truncated: expected 118 header bytes, the file has 8");
  CHECK(open_error((npy_dir() / "missing.npy").string()).find("cannot open the trace file: ") == 0);
  const std::string tiny = (npy_dir() / "tiny.npy").string();
  { std::ofstream(tiny, std::ios::binary) << "\x93NU"; }
  CHECK(open_error(tiny).find("not an NPY file") == 0);
}

}  // namespace moesim
