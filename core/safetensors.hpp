// Safetensors (https://huggingface.co/docs/safetensors) reader and writer.
//
// File layout: u64 little-endian N, N bytes of JSON header, then the data section.
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// Offsets are relative to the start of the data section.
//
// The reader memory-maps the file (read-only file, private copy-on-write mapping, so writing
// through a view never touches the file) and hands out zero-copy Tensor views that keep the
// mapping alive. It trusts nothing: the header length, the JSON, every entry's types, the
// dtype, the shape (negative dims, overflow), the offsets (inside the data section, end >= begin,
// size == numel * dtype size), overlaps, holes and unused trailing bytes are all checked at
// open(), as Hugging Face's own parser does. Every problem is a ModelError(path, "<tensor>: ...").
//
// Limitation: a file truncated by another process after open() raises SIGBUS on access, as with
// any mmap reader.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace xmodal {

// Every dtype the safetensors format defines. Only some map onto a Tensor DType (see
// st_tensor_dtype); F16/F64 are readable through SafetensorsFile::to_f32.
enum class StDType : uint8_t { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, F8_E5M2, F8_E4M3 };

const char* st_dtype_name(StDType t);                 // "F32", "BF16", ...
size_t st_dtype_size(StDType t);                      // bytes per element
std::optional<StDType> st_dtype_parse(const std::string& s);
std::optional<DType> st_tensor_dtype(StDType t);      // F32->f32, BF16->bf16, I32, I64, U8; else none
StDType st_dtype_of(DType t);

// IEEE half -> float (exact; subnormals, inf and NaN kept).
float f16_to_f32(uint16_t h);

struct StEntry {
  std::string name;
  StDType dtype = StDType::F32;
  Shape shape;
  int64_t numel = 0;
  uint64_t begin = 0, end = 0;  // byte offsets inside the data section
  uint64_t nbytes() const { return end - begin; }
};

class SafetensorsFile {
 public:
  // Largest header accepted (Hugging Face uses the same cap).
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

  // Maps and validates the file. Throws ModelError(path, ...) for a missing, unreadable or
  // malformed file. Copies are cheap-ish (the entry table is copied, the mapping is shared).
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  uint64_t header_size() const { return header_size_; }  // N, the JSON length
  uint64_t data_offset() const { return 8 + header_size_; }

  // Entries sorted by name.
  const std::vector<StEntry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  bool has(const std::string& name) const { return find(name) != nullptr; }
  const StEntry* find(const std::string& name) const;  // null when absent
  const StEntry& entry(const std::string& name) const;  // ModelError when absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Zero-copy view in the stored dtype (F32, BF16, I32, I64, U8; BOOL is viewed as u8). If the
  // data is not aligned to its element size inside the file, an aligned copy is returned
  // instead. ModelError for a dtype with no Tensor equivalent (use to_f32 for F16/F64).
  Tensor view(const std::string& name) const;
  // f32 values: a view for F32, a converted owned copy for BF16, F16 and F64. ModelError for
  // integer and other dtypes.
  Tensor to_f32(const std::string& name) const;

  // Sum of numel over all tensors.
  int64_t total_numel() const;

  SafetensorsFile() = default;  // empty; use open()

 private:
  struct Mapping;  // RAII for the mmap; shared with every view handed out
  char* data(const StEntry& e) const;  // start of e's bytes in the mapping

  std::string path_;
  std::shared_ptr<Mapping> map_;
  uint64_t file_size_ = 0, header_size_ = 0;
  std::vector<StEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (any strides; written contiguous) and string metadata to path atomically
// (temporary file in the same folder, fsync, rename). Tensors are laid out by element size,
// largest first, then by name, so every tensor starts at a multiple of its element size; the
// header is padded with spaces to a multiple of 8 bytes. Names must be non-empty and not
// "__metadata__". Throws InputError(path, ...) when the file cannot be written.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace xmodal
