#include "core/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"

namespace xmodal {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; big-endian hosts are not supported");

using json = nlohmann::json;

namespace {

struct DTypeInfo {
  StDType t;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {StDType::BOOL, "BOOL", 1}, {StDType::U8, "U8", 1},     {StDType::I8, "I8", 1},
    {StDType::I16, "I16", 2},   {StDType::U16, "U16", 2},   {StDType::F16, "F16", 2},
    {StDType::BF16, "BF16", 2}, {StDType::I32, "I32", 4},   {StDType::U32, "U32", 4},
    {StDType::F32, "F32", 4},   {StDType::F64, "F64", 8},   {StDType::I64, "I64", 8},
    {StDType::U64, "U64", 8},   {StDType::F8_E5M2, "F8_E5M2", 1}, {StDType::F8_E4M3, "F8_E4M3", 1},
};

const DTypeInfo& info(StDType t) {
  for (const auto& d : kDTypes)
    if (d.t == t) return d;
  throw InternalError("unknown StDType " + std::to_string(static_cast<int>(t)));
}

// "a string", "an array", ... for messages about wrong JSON types.
std::string json_kind(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a float";
    default: return "an unsupported JSON value";
  }
}

// A short, printable rendering of a JSON value for messages.
std::string json_short(const json& j) {
  std::string s;
  try {
    s = j.dump(-1, ' ', true, json::error_handler_t::replace);
  } catch (...) {
    s = "?";
  }
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// Reads a JSON value that must be a non-negative integer fitting in int64.
bool as_nonneg_int(const json& j, uint64_t& out) {
  if (j.is_number_unsigned()) {
    out = j.get<uint64_t>();
    return out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if (v < 0) return false;
    out = static_cast<uint64_t>(v);
    return true;
  }
  return false;
}

// An fd closed on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

}  // namespace

const char* st_dtype_name(StDType t) { return info(t).name; }
size_t st_dtype_size(StDType t) { return info(t).size; }

std::optional<StDType> st_dtype_parse(const std::string& s) {
  for (const auto& d : kDTypes)
    if (s == d.name) return d.t;
  return std::nullopt;
}

std::optional<DType> st_tensor_dtype(StDType t) {
  switch (t) {
    case StDType::F32: return DType::f32;
    case StDType::BF16: return DType::bf16;
    case StDType::I32: return DType::i32;
    case StDType::I64: return DType::i64;
    case StDType::U8: return DType::u8;
    case StDType::BOOL: return DType::u8;
    default: return std::nullopt;
  }
}

StDType st_dtype_of(DType t) {
  switch (t) {
    case DType::f32: return StDType::F32;
    case DType::bf16: return StDType::BF16;
    case DType::i32: return StDType::I32;
    case DType::i64: return StDType::I64;
    case DType::u8: return StDType::U8;
  }
  throw InternalError("st_dtype_of: unknown DType");
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);  // inf / NaN (payload kept)
  } else if (exp != 0) {
    u = sign | ((exp + 112) << 23) | (mant << 13);  // normal: rebias 15 -> 127
  } else if (mant == 0) {
    u = sign;  // +-0
  } else {
    // Subnormal: value = mant * 2^-24; exact in f32.
    float f = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -f : f;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct SafetensorsFile::Mapping {
  void* addr = nullptr;
  size_t len = 0;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr) ::munmap(addr, len);
  }
};

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto fail = [&](const std::string& what) { return ModelError(path, what); };

  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw fail(std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw fail("is a directory, expected a .safetensors file");
  if (!S_ISREG(st.st_mode)) throw fail("is not a regular file");
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) throw fail(std::strerror(errno));
  if (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode)) throw fail("is not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8)
    throw fail("file is " + std::to_string(size) + " bytes, too short for the 8-byte header length (truncated?)");

  SafetensorsFile f;
  f.path_ = path;
  f.file_size_ = size;
  f.map_ = std::make_shared<Mapping>();
  // Private, copy-on-write: a caller writing through a view changes its own pages, never the file.
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.fd, 0);
  if (p == MAP_FAILED) p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.fd, 0);
  if (p == MAP_FAILED) throw fail(std::string("cannot map the file: ") + std::strerror(errno));
  f.map_->addr = p;
  f.map_->len = size;
  const char* base = static_cast<const char*>(p);

  uint64_t n;
  std::memcpy(&n, base, 8);
  if (n > kMaxHeaderBytes)
    throw fail("header length " + std::to_string(n) + " is over the limit of " + std::to_string(kMaxHeaderBytes) +
               " bytes (not a safetensors file?)");
  if (n > size - 8)
    throw fail("header length " + std::to_string(n) + " is larger than the " + std::to_string(size - 8) +
               " bytes after it (truncated or not a safetensors file?)");
  f.header_size_ = n;
  const char* hb = base + 8;
  if (n < 2 || hb[0] != '{') throw fail("header does not start with '{' (not a safetensors file?)");

  // Parse, rejecting duplicate tensor names (nlohmann would silently keep the last one).
  std::set<std::string> seen;
  std::string duplicate;
  json header;
  try {
    header = json::parse(hb, hb + n, [&](int depth, json::parse_event_t ev, json& parsed) {
      if (ev == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
        const auto& k = parsed.get_ref<const std::string&>();
        if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
      }
      return true;
    });
  } catch (const json::exception& e) {
    std::string msg = e.what();
    if (auto pos = msg.find("] "); msg.rfind("[json.exception", 0) == 0 && pos != std::string::npos)
      msg = msg.substr(pos + 2);
    throw fail("header is not valid JSON: " + msg);
  }
  if (!header.is_object()) throw fail("header is " + json_kind(header) + ", expected a JSON object");
  if (!duplicate.empty()) throw fail(duplicate + ": tensor name appears twice in the header");

  const uint64_t data_size = size - 8 - n;
  for (auto& [name, v] : header.items()) {
    // (name is copied into the lambda: clang 14, used by the fuzz build, cannot capture a structured binding)
    auto bad = [&, tensor = std::string(name)](const std::string& what) { return fail(tensor + ": " + what); };
    if (name == "__metadata__") {
      if (!v.is_object()) throw bad("is " + json_kind(v) + ", expected an object of strings");
      for (auto& [k, mv] : v.items()) {
        if (!mv.is_string()) throw bad("value of '" + k + "' is " + json_kind(mv) + ", expected a string");
        f.metadata_[k] = mv.get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) throw bad("entry is " + json_kind(v) + ", expected an object with dtype, shape, data_offsets");
    StEntry e;
    e.name = name;

    auto it = v.find("dtype");
    if (it == v.end()) throw bad("missing 'dtype'");
    if (!it->is_string()) throw bad("'dtype' is " + json_kind(*it) + ", expected a string");
    auto dt = st_dtype_parse(it->get<std::string>());
    if (!dt) throw bad("unknown dtype '" + it->get<std::string>() + "'");
    e.dtype = *dt;

    it = v.find("shape");
    if (it == v.end()) throw bad("missing 'shape'");
    if (!it->is_array()) throw bad("'shape' is " + json_kind(*it) + ", expected an array of integers");
    uint64_t numel = 1;
    for (size_t i = 0; i < it->size(); ++i) {
      const json& d = (*it)[i];
      uint64_t dim;
      if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0)
        throw bad("negative dimension " + json_short(d) + " in shape " + json_short(*it));
      if (!as_nonneg_int(d, dim))
        throw bad("shape[" + std::to_string(i) + "] is " + json_short(d) + ", expected a non-negative integer");
      e.shape.push_back(static_cast<int64_t>(dim));
      if (dim != 0 && numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim)
        throw bad("shape " + json_short(*it) + " has more than 2^63 elements (overflow)");
      numel *= dim;
    }
    // Zero-sized dims make numel 0, whatever the other dims are; still reject absurd ones above.
    e.numel = static_cast<int64_t>(numel);
    const uint64_t esize = st_dtype_size(e.dtype);
    if (numel > std::numeric_limits<uint64_t>::max() / esize)
      throw bad("shape " + shape_str(e.shape) + " of " + st_dtype_name(e.dtype) + " overflows the byte count");
    const uint64_t want_bytes = numel * esize;

    it = v.find("data_offsets");
    if (it == v.end()) throw bad("missing 'data_offsets'");
    if (!it->is_array() || it->size() != 2)
      throw bad("'data_offsets' is " + json_short(*it) + ", expected [begin, end]");
    if (!as_nonneg_int((*it)[0], e.begin) || !as_nonneg_int((*it)[1], e.end))
      throw bad("'data_offsets' " + json_short(*it) + " must be two non-negative integers");
    const std::string offs = "[" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
    if (e.end < e.begin) throw bad("data_offsets " + offs + " end before they begin");
    if (e.end > data_size)
      throw bad("data_offsets " + offs + " lie outside the data section of " + std::to_string(data_size) +
                " bytes (truncated file?)");
    if (e.end - e.begin != want_bytes)
      throw bad("data_offsets " + offs + " span " + std::to_string(e.end - e.begin) + " bytes, but " +
                st_dtype_name(e.dtype) + shape_str(e.shape) + " needs " + std::to_string(want_bytes));
    f.entries_.push_back(std::move(e));
  }

  // The tensors must tile the data section exactly: no overlap, no hole, no trailing bytes
  // (the rule Hugging Face's parser enforces).
  std::vector<const StEntry*> order;
  for (const auto& e : f.entries_) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const StEntry* a, const StEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const StEntry* prev = nullptr;
  for (const StEntry* e : order) {
    const std::string range = "[" + std::to_string(e->begin) + ", " + std::to_string(e->end) + ")";
    if (e->begin < covered)
      throw fail(e->name + ": data " + range + " overlaps '" + prev->name + "' [" + std::to_string(prev->begin) +
                 ", " + std::to_string(prev->end) + ")");
    if (e->begin > covered)
      throw fail(e->name + ": data " + range + " leaves a hole of " + std::to_string(e->begin - covered) +
                 " unused bytes after " + (prev ? "'" + prev->name + "'" : std::string("the header")) +
                 " (the format requires tensors to cover the data section without gaps)");
    covered = e->end;
    prev = e;
  }
  if (covered != data_size)
    throw fail("the data section has " + std::to_string(data_size - covered) +
               " unused bytes after the last tensor (data section " + std::to_string(data_size) +
               " bytes, tensors cover " + std::to_string(covered) + ")");

  std::sort(f.entries_.begin(), f.entries_.end(), [](const StEntry& a, const StEntry& b) { return a.name < b.name; });
  return f;
}

const StEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                             [](const StEntry& e, const std::string& n) { return e.name < n; });
  return it != entries_.end() && it->name == name ? &*it : nullptr;
}

const StEntry& SafetensorsFile::entry(const std::string& name) const {
  const StEntry* e = find(name);
  if (!e) throw ModelError(path_, "no tensor named '" + name + "' (the file has " + std::to_string(entries_.size()) + ")");
  return *e;
}

char* SafetensorsFile::data(const StEntry& e) const {
  return static_cast<char*>(map_->addr) + data_offset() + e.begin;
}

Tensor SafetensorsFile::view(const std::string& name) const {
  const StEntry& e = entry(name);
  auto dt = st_tensor_dtype(e.dtype);
  if (!dt)
    throw ModelError(path_, name + ": dtype " + st_dtype_name(e.dtype) +
                                " has no tensor type here (F32, BF16, I32, I64, U8, BOOL); F16/F64 convert with to_f32");
  char* p = data(e);
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(*dt) != 0) {
    // Misaligned inside the file (a writer that does not order tensors by size): copy.
    Tensor t = Tensor::empty(e.shape, *dt);
    std::memcpy(t.raw(), p, e.nbytes());
    return t;
  }
  return Tensor::view_of(p, e.shape, *dt, std::shared_ptr<void>(map_));
}

Tensor SafetensorsFile::to_f32(const std::string& name) const {
  const StEntry& e = entry(name);
  switch (e.dtype) {
    case StDType::F32: return view(name);
    case StDType::BF16: return view(name).to(DType::f32);
    case StDType::F16: {
      Tensor t = Tensor::empty(e.shape, DType::f32);
      const char* p = data(e);
      float* d = t.f32();
      for (int64_t i = 0; i < e.numel; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        d[i] = f16_to_f32(h);
      }
      return t;
    }
    case StDType::F64: {
      Tensor t = Tensor::empty(e.shape, DType::f32);
      const char* p = data(e);
      float* d = t.f32();
      for (int64_t i = 0; i < e.numel; ++i) {
        double x;
        std::memcpy(&x, p + 8 * i, 8);
        d[i] = static_cast<float>(x);
      }
      return t;
    }
    default:
      throw ModelError(path_, name + ": dtype " + st_dtype_name(e.dtype) +
                                  " cannot be read as f32 (expected F32, BF16, F16 or F64)");
  }
}

int64_t SafetensorsFile::total_numel() const {
  int64_t n = 0;
  for (const auto& e : entries_) n += e.numel;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Writer

namespace {

void write_all(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw InputError(path, std::string("write failed: ") + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  struct Item {
    const std::string* name;
    Tensor t;
  };
  std::vector<Item> items;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == "__metadata__")
      throw InternalError("save_safetensors: invalid tensor name '" + name + "'", path);
    if (!t.defined()) throw InternalError("save_safetensors: tensor '" + name + "' is undefined", path);
    items.push_back({&name, t.contiguous()});
  }
  // Largest element size first keeps every tensor aligned to its element size in the file.
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return dtype_size(a.t.dtype()) > dtype_size(b.t.dtype());
  });

  json header = json::object();
  uint64_t off = 0;
  for (const auto& it : items) {
    uint64_t nb = it.t.nbytes();
    header[*it.name] = {{"dtype", st_dtype_name(st_dtype_of(it.t.dtype()))},
                        {"shape", it.t.shape()},
                        {"data_offsets", {off, off + nb}}};
    off += nb;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string h;
  try {
    h = header.dump();
  } catch (const json::exception& e) {
    throw InternalError(std::string("save_safetensors: ") + e.what(), path);  // e.g. invalid UTF-8 in a name
  }
  h.append((8 - h.size() % 8) % 8, ' ');
  const uint64_t n = h.size();

  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw InputError(path, std::string("cannot create temporary file: ") + std::strerror(errno));
  try {
    char len[8];
    std::memcpy(len, &n, 8);
    write_all(fd, len, 8, path);
    write_all(fd, h.data(), h.size(), path);
    for (const auto& it : items) write_all(fd, static_cast<const char*>(it.t.raw()), it.t.nbytes(), path);
    if (::fsync(fd) != 0) throw InputError(path, std::string("fsync failed: ") + std::strerror(errno));
    int rc = ::close(fd);
    fd = -1;
    if (rc != 0) throw InputError(path, std::string("close failed: ") + std::strerror(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      throw InputError(path, std::string("cannot rename temporary file: ") + std::strerror(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace xmodal
